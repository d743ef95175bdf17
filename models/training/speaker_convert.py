"""Take Resemblyzer's GE2E speaker encoder out of its wheel into a torch bundle.

Run once, reproducibly::

    pip download --no-deps -d /tmp/rz resemblyzer==0.1.4
    python -m sentistream.models.training.speaker_convert --wheel /tmp/rz --out /tmp/bundles

It reads ``resemblyzer/pretrained.pt`` from the wheel (a training checkpoint: step,
model state, optimizer state), keeps the encoder's weights (the LSTM and the linear
layer; the GE2E loss's ``similarity_weight`` / ``similarity_bias`` are training-only),
loads them into ``encoder.GE2EEncoder`` with ``strict=True`` and writes the bundle folder
``<out>/speaker-ge2e-resemblyzer/`` with ``write_bundle`` (weights, metadata, the licence).

``--check-reference`` compares our embeddings with Resemblyzer's own
``VoiceEncoder.embed_utterance`` on audio files; it needs the wheel importable and
librosa (a development check; webrtcvad, which Resemblyzer imports but embedding does not
use, may be absent).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sentistream.models.audio import read_audio
from sentistream.models.bundle import BundleMeta, bundle_dir, write_bundle
from sentistream.models.speaker.encoder import (
    EMBED_DIM,
    HIDDEN,
    LAYERS,
    N_MELS,
    PARTIAL_FRAMES,
    GE2EEncoder,
    SpeakerEncoder,
    mel_frames,
    raise_level,
)
from sentistream.models.training.cards import kept_card
from sentistream.models.training.face_convert import find_wheel, wheel_licence

TASK = "speaker embeddings (256-d, unit length) for diarization"
COMMAND = "python -m sentistream.models.training.speaker_convert --wheel WHEEL"
NAME = "speaker-ge2e-resemblyzer"
VERSION = "1"
MEMBER = "resemblyzer/pretrained.pt"
LICENSE_FILE = "LICENSE-resemblyzer-Apache-2.0.txt"
TRAINING_ONLY = ("similarity_weight", "similarity_bias")


def convert_state_dict(raw: bytes) -> tuple[dict[str, torch.Tensor], int]:
    """The encoder's state dict from the checkpoint bytes, and the training step."""
    checkpoint = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=False)
    state = {k: v for k, v in checkpoint["model_state"].items() if k not in TRAINING_ONLY}
    GE2EEncoder().load_state_dict(state, strict=True)  # every key, every shape
    return state, int(checkpoint.get("step", -1))


def convert(wheel: Path, out: Path, metrics: dict[str, Any] | None = None) -> BundleMeta:
    """Write ``<out>/speaker-ge2e-resemblyzer/`` from the Resemblyzer wheel."""
    wheel = find_wheel(wheel, "resemblyzer")
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(MEMBER)
        licence = wheel_licence(zf, wheel)
    state, step = convert_state_dict(raw)
    notice = (
        f"The speaker-encoder weights in {NAME} are taken from the Resemblyzer package "
        f"({wheel.name}, {MEMBER}), distributed under this licence:\n\n{licence.rstrip()}\n"
    )
    return write_bundle(
        out,
        name=NAME,
        kind="speaker",
        version=VERSION,
        labels=(),
        state=state,
        params={
            "architecture": f"LSTM({N_MELS}, {HIDDEN}, {LAYERS} layers) -> Linear -> ReLU -> L2",
            "embedding_dim": EMBED_DIM,
            "features": "power mel spectrogram, 40 Slaney bands, 25 ms Hann, 10 ms step, 16 kHz",
            "partial_frames": PARTIAL_FRAMES,
            "level": "raised to -30 dBFS RMS when quieter (Resemblyzer's preprocessing)",
        },
        training_data={
            "dataset": "LibriSpeech train-other-500, VoxCeleb 1 and VoxCeleb 2 (the Real-Time "
            "Voice Cloning encoder Resemblyzer ships, per Jemine 2019; the wheel itself does "
            "not name its data)",
            "weights_source": f"{wheel.name}, {MEMBER} (training step {step}, sha256 "
            f"{hashlib.sha256(raw).hexdigest()})",
            "method": "GE2E loss, Wan et al. 2018, 'Generalized end-to-end loss for speaker "
            "verification'; Jemine 2019 (Real-Time Voice Cloning)",
            "licence": f"Apache-2.0 (Resemblyzer, Resemble AI; see {LICENSE_FILE})",
            "converted_by": "sentistream.models.training.speaker_convert (strict load; the "
            "GE2E loss's similarity_weight / similarity_bias dropped)",
        },
        metrics=metrics or {},
        card=kept_card(bundle_dir(out, NAME), TASK, COMMAND),
        extra_files={LICENSE_FILE: notice},
    )


def compare_with_reference(wheel_dir: Path, files: list[Path], bundle: str = NAME) -> dict:
    """Cosine similarity of our embedding of each file with Resemblyzer's own
    ``embed_utterance`` of it (the same partials of the whole utterance, no silence
    trimming): checks the mel frames and the network, which should agree to float noise."""
    sys.path.insert(0, str(wheel_dir))
    sys.modules.setdefault("webrtcvad", types.ModuleType("webrtcvad"))  # not used to embed
    from resemblyzer import VoiceEncoder  # type: ignore[import-not-found]
    from resemblyzer.audio import normalize_volume  # type: ignore[import-not-found]

    theirs = VoiceEncoder(device="cpu", verbose=False)
    ours = SpeakerEncoder.load(bundle)
    cosines = []
    for path in files:
        wave = read_audio(path)
        ref = theirs.embed_utterance(normalize_volume(wave, -30, increase_only=True))
        # embed_utterance: the mean of 1.6 s partials every 1/1.3 s of the mel frames of
        # the whole (zero padded) utterance
        slices, mel_slices = theirs.compute_partial_slices(len(wave), 1.3, 0.75)
        padded = np.pad(wave, (0, max(0, slices[-1].stop - len(wave))))
        frames = mel_frames(raise_level(padded))
        with torch.inference_mode():
            x = torch.from_numpy(np.stack([frames[s] for s in mel_slices]))
            mine = ours.model(x).numpy().mean(axis=0)
        mine /= np.linalg.norm(mine)
        cosines.append(float(mine @ ref))
    return {"n": len(files), "min_cosine": min(cosines), "mean_cosine": float(np.mean(cosines))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--wheel", type=Path, required=True, help="wheel, or folder with it")
    parser.add_argument("--out", type=Path, help="bundles folder")
    parser.add_argument("--metrics", type=Path, help="JSON of evaluation figures to record")
    parser.add_argument(
        "--check-reference",
        nargs="+",
        type=Path,
        metavar="AUDIO",
        help="compare with Resemblyzer's own code (WHEEL: the unpacked wheel's folder)",
    )
    args = parser.parse_args(argv)
    if args.check_reference:
        print(json.dumps(compare_with_reference(args.wheel, args.check_reference), indent=2))
        return
    if args.out is None:
        parser.error("--out is required to convert")
    metrics = json.loads(args.metrics.read_text()) if args.metrics else None
    meta = convert(args.wheel, args.out, metrics)
    print(f"wrote {meta.path} ({meta.model_id})")


if __name__ == "__main__":
    main()
