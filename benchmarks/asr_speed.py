"""Speed of speech recognition on 60 s of continuous speech: packed vs one by one.

    python benchmarks/asr_speed.py [--seconds 60] [--threads 2] [--repeat 3] [--json out.json]

The clip is espeak-ng speech (``sentistream.pipelines.demo.synth.tts``) of varied sentences
separated by ``--pause-s`` pauses (0.7 s: a turn-taking gap, longer than the segmenter's
400 ms minimum silence), at 16 kHz. It is cut into speech segments by the pipeline's own
segmenter (``sentistream.transforms.media.segmenting.speech_spans``, Silero VAD, default
``SegmentConfig``), then transcribed (model already loaded, one warm-up call first) in
three ways:

* ``packed``: :class:`sentistream.models.asr.transcriber.Transcriber` with ``pack_s=28`` (default);
* ``one_by_one``: every segment alone (``pack_s=0``), as a naive step would;
* ``whole_clip``: the clip straight into faster-whisper (its own 30 s windows), for
  reference: no per-segment result, so not an option for the pipeline.

Reported per mode (best of ``--repeat`` runs): wall seconds, process CPU seconds, the
speed factor ``audio seconds / wall seconds`` (target: at least 8x real time), model
calls, and WER against the sentences. The machine's load average is recorded too: on a
shared machine, wall time depends on what else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from sentistream.models.asr.transcriber import AsrOptions, Transcriber, trim_bounds
from sentistream.models.audio import SAMPLE_RATE
from sentistream.models.training.asr_eval import GENERATED_SENTENCES, wer
from sentistream.models.whisper import load_whisper_asr, resample_to_16k
from sentistream.pipelines.demo.synth import tts


def continuous_speech(seconds: float, pause_s: float) -> tuple[np.ndarray, str]:
    """(16 kHz speech of ``seconds`` s, the text said): sentences cycled in order, each
    followed by ``pause_s`` of silence, as many as fit; silence pads the rest."""
    limit = int(seconds * SAMPLE_RATE)
    pause = np.zeros(int(pause_s * SAMPLE_RATE), np.float32)
    pieces: list[np.ndarray] = []
    said: list[str] = []
    total = 0
    for i in range(10_000):
        text = GENERATED_SENTENCES[i % len(GENERATED_SENTENCES)]
        audio = resample_to_16k(*tts(text))
        a, b = trim_bounds(audio, level=1e-3, pad_s=0.0)
        if total + (b - a) > limit:
            break
        pieces += [audio[a:b], pause]
        said.append(text)
        total += b - a + pause.size
    clip = np.zeros(limit, np.float32)
    joined = np.concatenate(pieces)[:limit]
    clip[: joined.size] = joined
    return clip, " ".join(said)


def vad_segments(audio: np.ndarray) -> list[np.ndarray]:
    """The audio of the speech segments the pipeline's segmenter finds (default config)."""
    from sentistream.transforms.config import SegmentConfig
    from sentistream.transforms.media.segmenting import speech_spans

    return [
        audio[int(s.start_s * SAMPLE_RATE) : int(s.end_s * SAMPLE_RATE)]
        for s in speech_spans(audio, SegmentConfig())
    ]


def _timed(fn) -> tuple[object, float, float]:  # noqa: ANN001 - any callable
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--pause-s", type=float, default=0.7, help="pause after sentences")
    parser.add_argument("--threads", type=int, default=2, help="CTranslate2 CPU threads")
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode; best is kept")
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    model = load_whisper_asr(args.model_dir, args.device, args.compute_type, args.threads)
    audio, said = continuous_speech(args.seconds, args.pause_s)
    segments = vad_segments(audio)
    audio_s = audio.size / SAMPLE_RATE
    base = AsrOptions()
    Transcriber(model, base).transcribe(segments[:1])  # warm-up

    def run_transcriber(options: AsrOptions):  # noqa: ANN202
        t = Transcriber(model, options)
        texts = [r.text for r in t.transcribe(segments)]
        return " ".join(texts), t.calls

    def run_whole():  # noqa: ANN202
        words, info = model.transcribe(
            audio,
            language=base.language,
            beam_size=base.beam_size,
            word_timestamps=True,
            vad_filter=False,
            condition_on_previous_text=False,
        )
        return " ".join(s.text for s in words), -1

    modes = {
        "packed": lambda: run_transcriber(base),
        "one_by_one": lambda: run_transcriber(replace(base, pack_s=0)),
        "whole_clip": run_whole,
    }
    report: dict[str, object] = {
        "audio_s": round(audio_s, 2),
        "segments": len(segments),
        "mean_segment_s": round(float(np.mean([s.size for s in segments])) / SAMPLE_RATE, 2),
        "threads": args.threads,
        "device": args.device,
        "compute_type": args.compute_type,
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "modes": {},
    }
    for name, fn in modes.items():
        best = None
        for _ in range(max(1, args.repeat)):
            (text, calls), wall, cpu = _timed(fn)  # type: ignore[misc]
            if best is None or wall < best[1]:
                best = (text, wall, cpu, calls)
        assert best is not None
        text, wall, cpu, calls = best
        report["modes"][name] = {  # type: ignore[index]
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "x_real_time": round(audio_s / wall, 1),
            "model_calls": calls if calls >= 0 else None,
            "wer": round(wer([said], [text]), 4),
        }
        print(
            f"{name:11s} {audio_s / wall:6.1f}x real time  wall {wall:6.2f} s  "
            f"cpu {cpu:6.2f} s  WER {wer([said], [text]):.2%}",
            file=sys.stderr,
        )
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(report, indent=2)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
