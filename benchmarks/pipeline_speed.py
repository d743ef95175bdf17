"""Throughput benchmark of the batch pipeline on a generated talking-head clip.

    python benchmarks/pipeline_speed.py                 # 60 s clip
    python benchmarks/pipeline_speed.py --long-minutes 20 --json bench.json

Reports, for a 640x360 25 fps H.264+AAC clip with speech and captions:
  * decode-only time (the limit: nothing can be faster than reading the file),
  * per stage, steady state (models already loaded): decode+segment, face, voice, text,
    fuse, as seconds and real-time factor (video seconds per wall second),
  * the whole ``sentistream run`` command in a fresh process: wall time (with interpreter,
    Beam and model start-up), its real-time factor, the ratio to decode-only, peak RSS,
  * with ``--long-minutes``: the same command on a long clip, to show memory stays flat.
Twice: words and segments from the captions sidecar (no speech recognition), and with
``--no-captions`` (voice activity segments, Whisper speech recognition).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sentistream.pipelines.options import add_model_arguments, config_from_args
from sentistream.transforms.asr import AsrHandler
from sentistream.transforms.media.captions import Cue
from sentistream.transforms.config import PipelineConfig
from sentistream.transforms.decode import iter_segments
from sentistream.transforms.media.decoding import iter_chunks
from sentistream.transforms.face import FaceHandler
from sentistream.transforms.records import SegmentRecord, VideoRef
from sentistream.transforms.score import to_score_row
from sentistream.pipelines.demo.synth import (
    talking_head_frames,
    trim_silence,
    tts,
    write_media,
    write_vtt,
)
from sentistream.transforms.text import TextHandler
from sentistream.transforms.voice import VoiceHandler

SENTENCES = (
    "Thanks for calling, how can I help you today?",
    "I have been waiting for two weeks and nobody called me back.",
    "I am sorry to hear that, let me look into it right away.",
    "That would be great, thank you, I really appreciate it.",
)


def make_clip(path: Path, seconds: float, fps: float = 25.0) -> Path:
    """A talking-head clip with a sentence every ~5 s, and a captions sidecar."""
    if path.is_file() and path.with_suffix(".vtt").is_file():
        return path
    from skimage import data as skdata

    rate = 16000
    voices = []
    for s in SENTENCES:
        audio, sr = tts(s)
        audio = trim_silence(audio)
        idx = np.linspace(0, audio.size - 1, int(audio.size * rate / sr))
        voices.append(np.interp(idx, np.arange(audio.size), audio).astype(np.float32))
    track = np.zeros(int(seconds * rate), np.float32)
    cues, t, i = [], 0.5, 0
    while t + 4.0 < seconds:
        v = voices[i % len(voices)]
        a = int(t * rate)
        track[a : a + v.size] = v[: track.size - a]
        cues.append(Cue(round(t, 3), round(t + v.size / rate, 3), SENTENCES[i % len(SENTENCES)]))
        t += v.size / rate + 1.0
        i += 1
    frames = talking_head_frames(skdata.astronaut(), int(seconds * fps), fps=fps)
    write_media(path, frames=frames, fps=fps, audio=track, sample_rate=rate)
    write_vtt(path.with_suffix(".vtt"), cues)
    return path


def timed(fn):  # noqa: ANN001, ANN201
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run_stage(handler, model, records: list, batch: int) -> list:  # noqa: ANN001
    out = []
    for i in range(0, len(records), batch):
        out.extend(handler.run_inference(records[i : i + batch], model))
    return out


def stages(clip: Path, seconds: float, config: PipelineConfig, *, asr: bool) -> dict:
    """Steady-state time of each stage (models loaded first), in pipeline order.

    ``asr=False``: segments and words from the captions sidecar; ``asr=True``: voice
    activity segments and speech recognition (the captions are ignored).
    """
    import dataclasses

    if asr:
        config = dataclasses.replace(
            config, segment=dataclasses.replace(config.segment, prefer_captions=False)
        )
    ref = VideoRef(uri=str(clip))
    report: dict = {}
    _, report["decode_only_s"] = timed(
        lambda: sum(1 for _ in iter_chunks(str(clip), config.decode))
    )
    records, report["decode_segment_s"] = timed(
        lambda: list(iter_segments(ref, config.decode, config.segment, config.policy))
    )
    report["segments"] = len(records)
    handlers = [("face", FaceHandler(config.face), config.face.runtime.max_batch_size)]
    if asr:
        handlers.append(("asr", AsrHandler(config.asr), config.asr.runtime.max_batch_size))
    handlers += [
        ("voice", VoiceHandler(config.voice), config.voice.runtime.max_batch_size),
        ("text", TextHandler(config.text), config.text.runtime.max_batch_size),
    ]
    for name, handler, batch in handlers:
        model, report[f"{name}_load_s"] = timed(handler.load_model)
        start = time.perf_counter()
        records = run_stage(handler, model, records, batch)
        report[f"{name}_s"] = time.perf_counter() - start
    rows, report["fuse_s"] = timed(
        lambda: [to_score_row(r, config, 0.0) for r in records if isinstance(r, SegmentRecord)]
    )
    report["rows"] = len(rows)
    report["present"] = {
        m: sum(getattr(r, f"{m}_present") for r in rows) for m in ("face", "voice", "text")
    }
    names = ["decode_segment"] + [name for name, _, _ in handlers] + ["fuse"]
    steady = sum(report[f"{k}_s"] for k in names)
    report["steady_state_s"] = steady
    report["steady_state_rtf"] = seconds / steady
    report["steady_over_decode"] = steady / report["decode_only_s"]
    for k in ["decode_only", *names]:
        report[f"{k}_rtf"] = seconds / max(report[f"{k}_s"], 1e-9)
    return report


_CHILD = (
    "import resource, sys\n"
    "from sentistream.pipelines.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def end_to_end(clip: Path, seconds: float, decode_only_s: float, *flags: str) -> dict:
    """The real ``sentistream run`` in a fresh process: wall time and its peak RSS."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-c", _CHILD, "run", "--input", str(clip), "--output", out, *flags]
        start = time.perf_counter()
        done = subprocess.run(
            cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        wall = time.perf_counter() - start
    peak_kb = int(done.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
    return {
        "video_s": seconds,
        "wall_s": wall,
        "rtf": seconds / wall,
        "over_decode_only": wall / decode_only_s,
        "peak_rss_mb": peak_kb / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--long-minutes", type=float, default=0.0)
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "sentistream-bench"))
    parser.add_argument("--json", default=None, help="write the report here too")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    clip = make_clip(work / f"clip_{int(args.seconds)}s.mp4", args.seconds)
    defaults = argparse.ArgumentParser()
    add_model_arguments(defaults)
    config = config_from_args(defaults.parse_args([]))  # exactly the CLI's defaults
    report = {
        "clip": str(clip),
        "stages_captions": stages(clip, args.seconds, config, asr=False),
        "stages_asr": stages(clip, args.seconds, config, asr=True),
    }
    decode_s = report["stages_captions"]["decode_only_s"]
    report["end_to_end"] = end_to_end(clip, args.seconds, decode_s)
    report["end_to_end_asr"] = end_to_end(clip, args.seconds, decode_s, "--no-captions")
    if args.long_minutes:
        long_s = args.long_minutes * 60
        long_clip = make_clip(work / f"clip_{int(long_s)}s.mp4", long_s)
        _, dec = timed(lambda: sum(1 for _ in iter_chunks(str(long_clip), PipelineConfig().decode)))
        report["end_to_end_long"] = end_to_end(long_clip, long_s, dec)
    text = json.dumps(report, indent=2, default=float)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
