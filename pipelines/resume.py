"""Resuming a backfill: which inputs an output root already holds, scored the same way.

An input counts as done when ``OUT/calls`` has a complete call row for its video id made
under the configured policy id by the configured models: each of the row's face / voice
/ text model ids is the configured one (or empty: that modality scored nothing for the
speaker, e.g. disabled by the policy), and its fusion id is the configured one. Call rows
are written only for recordings read to their end, so an input that failed (a dead
letter) is tried again on the next run. Only the ids are compared: a change of other
options (segmenting, fps, ...) needs ``--rescore``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pyarrow.compute as pc
import pyarrow.dataset as ds
from apache_beam.io.filesystems import FileSystems

from sentistream.pipelines.layout import is_local
from sentistream.transforms.io.parquet_stream import CALLS_DIR

_LOG = logging.getLogger(__name__)
_COLUMNS = (
    "video_id",
    "complete",
    "policy_id",
    "face_model_id",
    "voice_model_id",
    "text_model_id",
    "fusion_model_id",
)


def _dataset(root: str) -> ds.Dataset | None:
    folder = FileSystems.join(root, CALLS_DIR)
    if is_local(root):
        return ds.dataset(folder, format="parquet", partitioning="hive")
    import pyarrow.fs

    fs, path = pyarrow.fs.FileSystem.from_uri(folder)
    return ds.dataset(path, filesystem=fs, format="parquet", partitioning="hive")


def scored_video_ids(
    root: str, policy_id: str, model_ids: Mapping[str, str], fusion_id: str
) -> set[str]:
    """The video ids done in ``root`` (see the module docstring). ``model_ids``: modality
    -> the configured model id (``score.configured_model_ids``); a modality missing
    from it is enabled nowhere, so a row with an id for it was scored differently."""
    try:
        dataset = _dataset(root)
        if dataset is None:
            return set()
        wanted = (
            pc.field("complete")
            & (pc.field("policy_id") == policy_id)
            & (pc.field("fusion_model_id") == fusion_id)
        )
        for m in ("face", "voice", "text"):
            column = pc.field(f"{m}_model_id")
            same = column.is_null()
            if m in model_ids:
                same = same | (column == model_ids[m])
            wanted = wanted & same
        table = dataset.to_table(columns=["video_id"], filter=wanted)
    except FileNotFoundError:
        return set()
    except Exception as exc:  # noqa: BLE001 - unreadable output: score everything again
        _LOG.warning("cannot read the call rows in %s (%s): scoring every input", root, exc)
        return set()
    return set(table.column("video_id").to_pylist())
