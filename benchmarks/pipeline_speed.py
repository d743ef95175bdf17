"""Throughput benchmark of the batch pipeline on a generated talking-head clip.

    python benchmarks/pipeline_speed.py                 # 60 s clip
    python benchmarks/pipeline_speed.py --long-minutes 20 --json bench.json
    python benchmarks/pipeline_speed.py --device cuda --whisper-compute-type float16 ...

Any other flag is a model option of ``sentistream run`` (``--device``, batch sizes,
compute types, threads): it applies to the per-step timings and to the fresh-process runs.

Reports, for a 640x360 25 fps H.264+AAC clip with speech and captions:
  * decode-only time (the limit: nothing can be faster than reading the file),
  * per step of the data path (``transforms/plan.py``), steady state (models already
    loaded): decode+segment (+ policy), the diarization's first pass (unless
    ``--diarize off``), face, transcript (captions or speech recognition),
    voice, text, fuse, calls (the call-level rows), as seconds and real-time factor
    (video seconds per wall second), and its CPU seconds (all threads) per video-hour,
  * the whole ``sentistream run`` command in a fresh process: wall time (with interpreter,
    Beam and model start-up), its real-time factor, the ratio to decode-only, peak RSS,
  * with ``--long-minutes``: the same command on a long clip, to show memory stays flat.
Twice: words and segments from the captions sidecar (no speech recognition), and with
``--no-captions`` (voice activity segments, Whisper speech recognition).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sentistream.pipelines.demo.clips import spoken_clip
from sentistream.pipelines.options import add_model_arguments, config_from_args
from sentistream.transforms.asr import AsrHandler
from sentistream.transforms.calls import summarize
from sentistream.transforms.config import PipelineConfig
from sentistream.transforms.decode import iter_segments
from sentistream.transforms.diarization import diarize_recording
from sentistream.transforms.face import FaceHandler
from sentistream.transforms.media.decoding import iter_chunks
from sentistream.transforms.plan import DataPath, plan
from sentistream.transforms.policy import apply_policy
from sentistream.transforms.records import SegmentRecord, VideoRef
from sentistream.transforms.rows import to_score_row
from sentistream.transforms.text import TextHandler
from sentistream.transforms.transcript import settle_captions
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
    return spoken_clip(path, SENTENCES, duration_s=seconds, gap_s=1.0, repeat=True, fps=fps)


def timed(fn):  # noqa: ANN001, ANN201
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def clocked(report: dict, key: str, fn):  # noqa: ANN001, ANN201
    """``fn()``, its wall seconds as ``report[key + "_s"]`` and the process's CPU seconds
    (all threads) as ``report[key + "_cpu_s"]``."""
    cpu = time.process_time()
    out, report[f"{key}_s"] = timed(fn)
    report[f"{key}_cpu_s"] = time.process_time() - cpu
    return out


def run_stage(handler, model, records: list, batch: int) -> list:  # noqa: ANN001
    out = []
    for i in range(0, len(records), batch):
        out.extend(handler.run_inference(records[i : i + batch], model))
    return out


class _CaptionsOnly:
    """The transcript step without speech recognition, in the handlers' shape."""

    def __init__(self, drop: tuple[str, ...]) -> None:
        self._drop = drop

    def load_model(self) -> None:
        return None

    def run_inference(self, batch: list, model: None) -> list:
        return [settle_captions(r, self._drop) for r in batch]


def _handler(step: str, path: DataPath, config: PipelineConfig):  # noqa: ANN202
    """The handler of ``step`` and its batch size, as ``ScoreVideos`` builds it."""
    drop = path.drops_after(step)
    if step == "face":
        return FaceHandler(config.face, drop), config.face.runtime.max_batch_size
    if step == "transcript":
        if path.asr:
            return AsrHandler(config.asr, drop=drop), config.asr.runtime.max_batch_size
        return _CaptionsOnly(drop), 1 << 30
    if step == "voice":
        return VoiceHandler(config.voice, drop), config.voice.runtime.max_batch_size
    return TextHandler(config.text, drop), config.text.runtime.max_batch_size


def stages(clip: Path, seconds: float, config: PipelineConfig, *, asr: bool) -> dict:
    """Steady-state time of each step of the data path (models loaded first), in order.

    ``asr=False``: segments and words from the captions sidecar; ``asr=True``: voice
    activity segments and speech recognition (the captions are ignored).
    """
    import dataclasses

    if asr:
        config = dataclasses.replace(
            config, segment=dataclasses.replace(config.segment, prefer_captions=False)
        )
    path = plan(config)
    ref = VideoRef(uri=str(clip))
    report: dict = {"steps": list(path.steps)}
    clocked(report, "decode_only", lambda: sum(1 for _ in iter_chunks(str(clip), path.decode)))
    elements = clocked(
        report,
        "decode_segment",
        lambda: [
            apply_policy(r, config.policy)
            for r in iter_segments(
                ref, path.decode, config.segment, config.policy, carry=path.carried
            )
        ],
    )
    *records, end = elements
    report["segments"] = len(records)
    diarized = config.diarize.mode != "off"
    if diarized:  # the first pass over the audio (a mono clip: one track)
        clocked(
            report,
            "diarize",
            lambda: diarize_recording(
                ref, path.decode, config.segment, config.policy, config.diarize, 1
            ),
        )
    for step in path.steps:
        handler, batch = _handler(step, path, config)
        model, report[f"{step}_load_s"] = timed(handler.load_model)
        records = clocked(
            report, step, lambda h=handler, m=model, r=records, b=batch: run_stage(h, m, r, b)
        )
    rows = clocked(
        report,
        "fuse",
        lambda: [to_score_row(r, config, 0.0) for r in records if isinstance(r, SegmentRecord)],
    )
    report["rows"] = len(rows)
    calls = clocked(
        report,
        "calls",
        lambda: summarize(rows, end, neutral_band=config.fusion.neutral_band, processed_at=0.0),
    )
    report["call_rows"] = len(calls)
    report["present"] = {
        m: sum(getattr(r, f"{m}_present") for r in rows) for m in ("face", "voice", "text")
    }
    names = ["decode_segment", *(["diarize"] if diarized else []), *path.steps, "fuse", "calls"]
    steady = sum(report[f"{k}_s"] for k in names)
    report["steady_state_s"] = steady
    report["steady_state_rtf"] = seconds / steady
    report["steady_over_decode"] = steady / report["decode_only_s"]
    for k in ["decode_only", *names]:
        report[f"{k}_rtf"] = seconds / max(report[f"{k}_s"], 1e-9)
    report["cpu_s_per_video_hour"] = {
        k: report[f"{k}_cpu_s"] * 3600 / seconds for k in ["decode_only", *names]
    }
    return report


def end_to_end(clip: Path, seconds: float, decode_only_s: float, *flags: str) -> dict:
    """The installed ``sentistream run`` in a fresh process: wall time (interpreter, Beam
    and model start-up, and its exit) and its peak RSS (from ``wait4``)."""
    command = Path(sys.executable).parent / "sentistream"
    with tempfile.TemporaryDirectory() as out:
        cmd = [str(command), "run", "--input", str(clip), "--output", out, *flags]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.decode()[-3000:]}")
    return {
        "video_s": seconds,
        "wall_s": wall,
        "rtf": seconds / wall,
        "over_decode_only": wall / decode_only_s,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def model_config(flags: list[str]) -> PipelineConfig:
    """The config of ``sentistream run`` model flags, with the command line's defaults."""
    models = argparse.ArgumentParser(prog="benchmark model options")
    add_model_arguments(models)
    return config_from_args(models.parse_args(flags))


def write_report(report: dict, path: str | None) -> None:
    """Print the report as JSON, and write it to ``path`` too."""
    text = json.dumps(report, indent=2, default=float)
    print(text)
    if path:
        Path(path).write_text(text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--long-minutes", type=float, default=0.0)
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "sentistream-bench"))
    parser.add_argument("--json", default=None, help="write the report here too")
    args, model_flags = parser.parse_known_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    clip = make_clip(work / f"clip_{int(args.seconds)}s.mp4", args.seconds)
    config = model_config(model_flags)
    report = {
        "clip": str(clip),
        "stages_captions": stages(clip, args.seconds, config, asr=False),
        "stages_asr": stages(clip, args.seconds, config, asr=True),
    }
    decode_s = report["stages_captions"]["decode_only_s"]
    report["model_flags"] = model_flags
    report["end_to_end"] = end_to_end(clip, args.seconds, decode_s, *model_flags)
    report["end_to_end_asr"] = end_to_end(
        clip, args.seconds, decode_s, "--no-captions", *model_flags
    )
    if args.long_minutes:
        long_s = args.long_minutes * 60
        long_clip = make_clip(work / f"clip_{int(long_s)}s.mp4", long_s)
        _, dec = timed(lambda: sum(1 for _ in iter_chunks(str(long_clip), PipelineConfig().decode)))
        report["end_to_end_long"] = end_to_end(long_clip, long_s, dec, *model_flags)
    write_report(report, args.json)


if __name__ == "__main__":
    main()
