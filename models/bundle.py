"""The one model registry: bundles (weights + parameters + labels + provenance) by name,
and the default bundle of each modality.

A bundle named ``NAME`` is a folder ``NAME/`` holding ``bundle.json`` (this module's
``BundleMeta``), the weights file it names (``weights.pt``) and a model card ``card.md``;
:func:`write_bundle` is the one writer (training puts its report beside, ``report.json``;
the shipped bundles' reports live in the repository's ``docs/reports/NAME.json``).
Bundles shipped with the package live in ``sentistream/models/weights/NAME/``; a user's
own bundle is passed by path (to its folder or its ``bundle.json``). Every output row
carries the ``model_id`` of each bundle that produced it.

``DEFAULT_BUNDLES`` is read by every entry point (``run``, ``stream``, ``train``,
``evaluate``, the benchmarks and the docs): there is no other place a default is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

BUNDLE_FORMAT = 1
BUNDLE_FILE = "bundle.json"
WEIGHTS_FILE = "weights.pt"
CARD_FILE = "card.md"
REPORT_FILE = "report.json"
KINDS = ("face", "voice", "text", "fusion", "calibration", "speaker")

# The default bundle of each kind: what ``sentistream run`` uses and ``evaluate`` measures.
# "fusion" names the shipped learned fusion that ``train fusion`` writes and
# ``evaluate fusion`` measures; which fusion ``run`` applies is ``DEFAULT_FUSION``.
DEFAULT_BUNDLES: dict[str, str] = {
    "face": "face-fer2013-minixception-ft",
    "voice": "voice-whisper-tiny-v3",
    "text": "text-minilm-ft",
    "fusion": "fusion-late-mlp",
    # The speaker encoder the diarization step embeds turns with (not a sentiment model).
    "speaker": "speaker-ge2e-resemblyzer",
}
# The fusion ``run`` applies: a learned bundle's name, or None for the fixed rule.
DEFAULT_FUSION: str | None = None
# The confidence calibration ``run`` applies to the output columns (None: raw confidences).
DEFAULT_CALIBRATION: str | None = None


def default_bundle(kind: str) -> str:
    """The shipped default bundle name of ``kind`` (face, voice, text, fusion or speaker)."""
    if kind not in DEFAULT_BUNDLES:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return DEFAULT_BUNDLES[kind]


@dataclass(frozen=True)
class BundleMeta:
    """What a bundle is.

    Attributes:
        name: bundle name (file stem).
        model_id: unique id written into every output row, ``<name>@<version>``.
        kind: ``face`` | ``voice`` | ``text`` | ``fusion``.
        labels: the model's class labels, in output order.
        weights: weights file name, relative to the bundle's folder.
        params: preprocessing and architecture parameters the loader needs.
        training_data: where the weights came from, with licences.
        metrics: evaluation figures (from ``sentistream evaluate`` / training reports).
        path: folder the bundle was loaded from (not serialised).
    """

    name: str
    model_id: str
    kind: str
    labels: tuple[str, ...]
    weights: str
    params: dict[str, Any] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    format: int = BUNDLE_FORMAT
    path: str = ""

    @property
    def weights_path(self) -> Path:
        return Path(self.path) / self.weights

    def to_json(self) -> str:
        data = {k: v for k, v in self.__dict__.items() if k != "path"}
        data["labels"] = list(self.labels)
        return json.dumps(data, indent=2, sort_keys=True)


class Bundled:
    """Base of the model classes loaded from a bundle: ``model_id`` and ``labels`` are the
    bundle's (``meta``), so every output row names the bundle that produced it."""

    meta: BundleMeta

    @property
    def model_id(self) -> str:
        return self.meta.model_id

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.meta.labels)


def shipped_weights_dir() -> Path:
    """Folder of the bundles shipped inside the package."""
    return Path(str(resources.files("sentistream.models.weights")))


def shipped_bundles() -> list[str]:
    """Names of the bundles shipped inside the package."""
    return sorted(p.parent.name for p in shipped_weights_dir().glob(f"*/{BUNDLE_FILE}"))


def resolve_bundle(name_or_path: str) -> Path:
    """Path of a bundle's ``bundle.json``: a path (the folder or the file), or the name of
    a shipped bundle."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".json" and candidate.is_file():
        return candidate
    if candidate.is_dir() and (candidate / BUNDLE_FILE).is_file():
        return candidate / BUNDLE_FILE
    shipped = shipped_weights_dir() / name_or_path / BUNDLE_FILE
    if "/" not in name_or_path and shipped.is_file():
        return shipped
    available = shipped_bundles()
    raise ValueError(
        f"bundle {name_or_path!r} is neither a bundle .json file nor a shipped bundle; "
        f"shipped bundles: {available}"
    )


def load_bundle_meta(name_or_path: str, expected_kind: str | None = None) -> BundleMeta:
    """Read a bundle's metadata, checking its format and (optionally) its kind."""
    path = resolve_bundle(name_or_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != BUNDLE_FORMAT:
        raise ValueError(
            f"bundle {path} has format {data.get('format')!r}; this version reads "
            f"format {BUNDLE_FORMAT}"
        )
    data["labels"] = tuple(data["labels"])
    data["path"] = str(path.parent)
    meta = BundleMeta(**data)
    if expected_kind is not None and meta.kind != expected_kind:
        raise ValueError(
            f"bundle {name_or_path!r} is a {meta.kind!r} model, expected {expected_kind!r}"
        )
    if not meta.weights_path.is_file():
        raise ValueError(f"bundle {meta.name!r}: weights file {meta.weights_path} is missing")
    return meta


def bundle_dir(out: Path, name: str) -> Path:
    """The folder a bundle named ``name`` is written to under a training ``--out``."""
    return Path(out) / name


def save_bundle_meta(meta: BundleMeta, folder: Path) -> Path:
    """Write ``folder/bundle.json`` (``folder`` is the bundle's own folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / BUNDLE_FILE
    out.write_text(meta.to_json() + "\n", encoding="utf-8")
    return out


def write_bundle(
    out: Path,
    *,
    name: str,
    kind: str,
    version: str,
    labels: tuple[str, ...],
    state: Mapping[str, Any],
    params: dict[str, Any],
    training_data: dict[str, Any],
    metrics: dict[str, Any],
    card: Callable[[BundleMeta], str],
    report: dict[str, Any] | None = None,
    extra_files: Mapping[str, str] | None = None,
) -> BundleMeta:
    """Write the bundle ``name`` to ``out/name/``: ``weights.pt`` (``state``), ``bundle.json``,
    ``card.md`` (``card(meta)``), and, when given, ``report.json`` (``report`` with the
    bundle's ``model_id``) and ``extra_files`` (file name -> text, e.g. a licence).

    ``model_id`` is ``name@version+<first 8 hex of the weights' sha256>``: a changed model
    never reuses an id. Returns the metadata, ``path`` set to the folder.
    """
    import torch

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    folder = bundle_dir(out, name)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / WEIGHTS_FILE
    torch.save(dict(state), weights)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:8]
    if report is not None:
        metrics = {**metrics, "report": REPORT_FILE}
    meta = BundleMeta(
        name=name,
        model_id=f"{name}@{version}+{digest}",
        kind=kind,
        labels=tuple(labels),
        weights=WEIGHTS_FILE,
        params=params,
        training_data=training_data,
        metrics=metrics,
        path=str(folder),
    )
    save_bundle_meta(meta, folder)
    (folder / CARD_FILE).write_text(card(meta), encoding="utf-8")
    if report is not None:
        text = json.dumps({**report, "model_id": meta.model_id}, indent=1, default=str)
        (folder / REPORT_FILE).write_text(text + "\n", encoding="utf-8")
    for file_name, text in (extra_files or {}).items():
        (folder / file_name).write_text(text, encoding="utf-8")
    return meta


def load_weights_strict(module: Any, meta: BundleMeta, describes: str, state: Any = None) -> Any:
    """Load ``state`` (default: the bundle's weights file, ``read_weights``) into ``module``
    with ``strict=True``; on any mismatch raise a ValueError naming the bundle, its weights
    file and what ``describes`` the module (e.g. ``"do not match the head its params
    describe"``). Returns ``module``."""
    if state is None:
        state = read_weights(meta)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(
            f"bundle {meta.name!r}: weights {meta.weights_path} {describes}: {err}"
        ) from err
    return module


def read_weights(meta: BundleMeta) -> Any:
    """The bundle's weights file as a state dict, on the CPU, tensors only."""
    import torch

    return torch.load(meta.weights_path, map_location="cpu", weights_only=True)
