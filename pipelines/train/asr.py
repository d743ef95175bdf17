"""``python -m sentistream.pipelines.train.asr``: the ASR evaluation of
``models/training/asr_eval.py`` plus (``--generated``) espeak-ng speech of its
``GENERATED_SENTENCES``, made by the demo's synthesiser (``pipelines/demo/synth.py``), which
``models`` may not import.

    python -m sentistream.pipelines.train.asr --data ../shared/data --generated
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sentistream.models.training.asr_eval import (
    GENERATED_SENTENCES,
    Clip,
    build_parser,
    run,
    spread,
)
from sentistream.models.whisper import resample_to_16k
from sentistream.pipelines.demo.synth import tts


def generated_clips(limit: int | None = None) -> list[Clip]:
    """espeak-ng speech of ``GENERATED_SENTENCES``, resampled to 16 kHz."""
    sentences = list(GENERATED_SENTENCES)
    if limit is not None:
        sentences = spread(sentences, limit)
    clips = []
    for i, text in enumerate(sentences):
        audio, sr = tts(text)
        clips.append(Clip(f"tts-{i:02d}", resample_to_16k(audio, sr), text))
    return clips


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    parser.add_argument("--generated", action="store_true", help="also espeak-ng speech")
    args = parser.parse_args(argv)
    extra = {"generated": generated_clips(args.limit)} if args.generated else {}
    return run(args, extra)


if __name__ == "__main__":
    sys.exit(main())
