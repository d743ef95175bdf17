"""Scaling benchmark: one backfill on 1 and 2 workers, locally and on Dask, and the cost
projection for a daily volume.

    python benchmarks/scaling.py                          # 8 x 60 s clips
    python benchmarks/scaling.py --files 16 --json docs/reports/scaling.json

Each setup runs the real ``sentistream run`` (captions, the default models) in a fresh
process over the same ``--files`` copies of the talking-head clip of
``benchmarks/pipeline_speed.py``:

  * ``local-1``: FnApiRunner in one process (``--workers 1``),
  * ``local-2``: FnApiRunner multi-processing (``--workers 2``),
  * ``dask-1`` / ``dask-2``: a ``dask scheduler`` and ``dask worker --nworkers N
    --nthreads 1`` on loopback, the job with ``--runner DaskRunner``; run twice, the
    second time on workers that already hold the models (a long-lived cluster).

For each: wall seconds, video-hours per wall-hour, CPU seconds per video-hour (the
launcher and every worker process, all threads), and peak RSS per process (sampled
every 0.2 s). Then the steady-state CPU seconds per video-hour of each stage (one
process, models loaded: ``pipeline_speed.stages``), and from those figures, on paper,
the workers and cost for ``--video-hours-per-day`` on CPU and on one GPU type (prices
are flags: list prices change, pass your own).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from pipeline_speed import make_clip, model_config, stages, write_report  # same folder

from sentistream.pipelines.dask_runner import LoopbackCluster

BIN = Path(sys.executable).parent


class Sampler:
    """Peak RSS per process of some process trees, sampled every ``every`` seconds, and
    their CPU seconds (own and waited-for children) between start and stop."""

    def __init__(self, roots: list[int], every: float = 0.2) -> None:
        self.roots = roots
        self.every = every
        self.peak: dict[int, tuple[str, int]] = {}  # pid -> (name, bytes)
        self.cpu: dict[int, float] = {}  # pid -> last seen CPU seconds
        self.root_of: dict[int, int] = {}  # pid -> the root whose tree it is in
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _procs(self) -> list[tuple[int, psutil.Process]]:
        out = []
        for pid in self.roots:
            try:
                root = psutil.Process(pid)
                out += [(pid, p) for p in (root, *root.children(recursive=True))]
            except psutil.NoSuchProcess:
                continue
        return out

    def sample(self) -> None:
        for root, p in self._procs():
            self.root_of[p.pid] = root
            try:
                with p.oneshot():
                    rss = p.memory_info().rss
                    t = p.cpu_times()
                    name = " ".join(p.cmdline()[1:3])[:60] or p.name()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if rss > self.peak.get(p.pid, ("", 0))[1]:
                self.peak[p.pid] = (name, rss)
            self.cpu[p.pid] = t.user + t.system + t.children_user + t.children_system

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> Sampler:
        self.sample()
        self.start_cpu = dict(self.cpu)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def cpu_used(self, root: int) -> float:
        """CPU seconds of ``root``'s tree since start (as last sampled)."""
        return sum(
            c - self.start_cpu.get(pid, 0.0)
            for pid, c in self.cpu.items()
            if self.root_of.get(pid) == root
        )


def inputs(clip: Path, n: int, folder: Path) -> list[str]:
    """``n`` copies of ``clip`` (hard links where possible) with their captions."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        for suffix in (".mp4", ".vtt"):
            dst = folder / f"call_{i:03d}{suffix}"
            if not dst.exists():
                try:
                    os.link(clip.with_suffix(suffix), dst)
                except OSError:
                    shutil.copy(clip.with_suffix(suffix), dst)
        out.append(str(folder / f"call_{i:03d}.mp4"))
    return out


def run_job(files: list[str], flags: list[str], extra_roots: list[int]) -> dict:
    """One ``sentistream run`` over ``files``: wall, CPU (launcher, its children and the
    processes under ``extra_roots``), peak RSS per process."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [str(BIN / "sentistream"), "run", "--output", out, "--no-progress", *flags]
        for f in files:
            cmd += ["--input", f]
        before = os.times()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        with Sampler([proc.pid, *extra_roots]) as s:
            _, err = proc.communicate()
        wall = time.perf_counter() - start
        after = os.times()
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    # the launcher and its children, from the kernel's accounting once they were waited
    # for; the Dask workers (not our children), from the sampler
    launcher = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    extra = sum(s.cpu_used(root) for root in extra_roots)
    processes = [
        {
            "pid": pid,
            "role": "launcher"
            if pid == proc.pid
            else ("launcher's child" if s.root_of[pid] == proc.pid else "dask worker tree"),
            "cmd": name,
            "peak_rss_mb": rss / 2**20,
        }
        for pid, (name, rss) in s.peak.items()
    ]
    return {
        "wall_s": wall,
        "cpu_s": launcher + extra,
        "launcher_cpu_s": launcher,
        "worker_cpu_s": extra if extra_roots else launcher,
        "processes": processes,
    }


def summarize(run: dict, video_s: float) -> dict:
    """Rates of one run; "workers" are the processes that scored (the launcher itself in a
    one-process run, its SDK worker children with ``--workers N``, the Dask workers)."""
    hours = video_s / 3600
    big = [p for p in run["processes"] if p["peak_rss_mb"] > 200]  # not nannies, forkservers
    scoring = [p for p in big if p["role"] != "launcher"] or big
    return {
        **run,
        "video_hours_per_wall_hour": hours / (run["wall_s"] / 3600),
        "rtf": video_s / run["wall_s"],
        "cpu_s_per_video_hour": run["cpu_s"] / hours,
        "worker_cpu_s_per_video_hour": run["worker_cpu_s"] / hours,
        "worker_peak_rss_mb": [p["peak_rss_mb"] for p in scoring],
    }


def project(
    cpu_s_per_vh: float,
    gpu_host_cpu_s_per_vh: float,
    rss_mb: float,
    args: argparse.Namespace,
) -> dict:
    """Workers and cost for ``args.video_hours_per_day``, on paper.

    CPU: one single-thread worker process per core, ``cpu_s_per_vh`` CPU seconds per
    video-hour, cores kept ``args.utilisation`` busy. GPU: speech recognition, the voice
    branch (its Whisper encoder) and the text model move to the GPU; what stays on the
    host's cores is ``gpu_host_cpu_s_per_vh``: decode and segmentation, the diarization's
    first pass, the face step (its detector, libfacedetection, runs on the CPU only; its
    small expression model is counted here too: an upper bound), fusion and the job's
    overhead. The GPU's own time is not measured (no CUDA machine was available), so the
    figure assumes it keeps up with its host's cores. VMs are given as a fraction (the
    share of one VM's day) and whole (what is actually rented).
    """
    per_day = args.video_hours_per_day

    def fleet(cpu_s: float, vm_cores: int, usd_per_hour: float) -> dict:
        cores = per_day * cpu_s / 86400 / args.utilisation
        vms = cores / vm_cores
        whole = max(1, math.ceil(vms))
        return {
            "cores": cores,
            "vms": vms,
            "usd_per_day": vms * 24 * usd_per_hour,
            "usd_per_video_hour": vms * 24 * usd_per_hour / per_day,
            "whole_vms": whole,
            "usd_per_day_whole_vms": whole * 24 * usd_per_hour,
        }

    return {
        "video_hours_per_day": per_day,
        "utilisation": args.utilisation,
        "cpu": {
            "cpu_s_per_video_hour": cpu_s_per_vh,
            "vm": f"{args.cpu_vm_cores} vCPU, ${args.usd_per_cpu_vm_hour}/h",
            "memory_gb_per_vm": args.cpu_vm_cores * rss_mb / 1024,
            **fleet(cpu_s_per_vh, args.cpu_vm_cores, args.usd_per_cpu_vm_hour),
        },
        "gpu": {
            "host_cpu_s_per_video_hour": gpu_host_cpu_s_per_vh,
            "vm": f"1 {args.gpu_name}, {args.gpu_vm_cores} vCPU, ${args.usd_per_gpu_vm_hour}/h",
            "measured_on_gpu": False,
            **fleet(gpu_host_cpu_s_per_vh, args.gpu_vm_cores, args.usd_per_gpu_vm_hour),
        },
    }


# The steps that stay on the CPU when the models run on a GPU (see ``project``).
HOST_STEPS = ("decode_segment", "diarize", "face", "fuse", "calls")
MODES = {"captions": [], "asr": ["--no-captions"]}
# The projection's basis, the first of these measured: long-lived workers (the
# launcher's CPU is per job, not per video), the most workers.
BASIS = ("dask-2-warm", "local-2", "dask-1-warm", "local-1")


def run_setups(
    files: list[str], video_s: float, setups: list[str], flags: list[str], work: Path
) -> dict:
    """Every setup over ``files`` (``video_s`` in all); a Dask setup runs twice (cold,
    then on warm workers)."""
    runs: dict = {}
    for setup in setups:
        kind, n = setup.rsplit("-", 1)
        print(f"{setup} {' '.join(flags)} ...", file=sys.stderr, flush=True)
        if kind == "local":
            runs[setup] = summarize(run_job(files, ["--workers", n, *flags], []), video_s)
            continue
        with LoopbackCluster(int(n), work) as cluster:
            dask = ["--runner", "DaskRunner", "--dask_client_address", cluster.address]
            for label in ("cold", "warm"):
                run = run_job(files, [*dask, *flags], [cluster.worker_root])
                runs[f"{setup}-{label}"] = summarize(run, video_s)
    for one, two in (("local-1", "local-2"), ("dask-1-warm", "dask-2-warm")):
        if one in runs and two in runs:
            runs[f"speedup {two} vs {one}"] = runs[one]["wall_s"] / runs[two]["wall_s"]
    return runs


def projection_of(mode: dict, args: argparse.Namespace) -> dict:
    """The projection from one mode's runs and per-stage CPU seconds."""
    runs, per_stage = mode["runs"], mode["stages_cpu_s_per_video_hour"]
    name = next(k for k in (*BASIS, *runs) if isinstance(runs.get(k), dict))
    base = runs[name]
    # what the job spends beyond the steady-state stages (Beam, writes) stays on the host
    overhead = base["worker_cpu_s_per_video_hour"] - sum(
        v for k, v in per_stage.items() if k != "decode_only"
    )
    host = sum(per_stage[k] for k in HOST_STEPS if k in per_stage) + max(overhead, 0.0)
    rss = max(base["worker_peak_rss_mb"])
    return {"from_run": name, **project(base["worker_cpu_s_per_video_hour"], host, rss, args)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--setups", default="local-1,local-2,dask-1,dask-2")
    parser.add_argument("--modes", default="captions,asr", help=f"of {sorted(MODES)}")
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "sentistream-bench"))
    parser.add_argument("--json", default=None, help="write the report here too")
    parser.add_argument("--video-hours-per-day", type=float, default=1000.0)
    parser.add_argument("--utilisation", type=float, default=0.7)
    # GCP us-central1 on-demand list prices seen in 2025 (n2-standard-8; g2-standard-8
    # with one NVIDIA L4); pass current ones.
    parser.add_argument("--cpu-vm-cores", type=int, default=8)
    parser.add_argument("--usd-per-cpu-vm-hour", type=float, default=0.388)
    parser.add_argument("--gpu-name", default="NVIDIA L4")
    parser.add_argument("--gpu-vm-cores", type=int, default=8)
    parser.add_argument("--usd-per-gpu-vm-hour", type=float, default=0.854)
    parser.add_argument(
        "--reproject", default=None, help="a saved report: recompute its projections only"
    )
    args, model_flags = parser.parse_known_args()
    if args.reproject:
        report = json.loads(Path(args.reproject).read_text())
        for mode in MODES:
            if mode in report:
                report[mode]["projection"] = projection_of(report[mode], args)
        write_report(report, args.json)
        return

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    clip = make_clip(work / f"clip_{int(args.seconds)}s.mp4", args.seconds)
    files = inputs(clip, args.files, work / f"scaling_{int(args.seconds)}s")
    config = model_config(model_flags)
    report: dict = {"files": args.files, "video_s": args.files * args.seconds}
    report["model_flags"] = model_flags
    report["machine"] = {"cpus": os.cpu_count(), "memory_gb": psutil.virtual_memory().total / 2**30}
    for mode in args.modes.split(","):
        flags = [*MODES[mode], *model_flags]
        runs = run_setups(files, report["video_s"], args.setups.split(","), flags, work)
        steady = stages(clip, args.seconds, config, asr=mode == "asr")
        per_stage = steady["cpu_s_per_video_hour"]
        report[mode] = {
            "runs": runs,
            "stages_cpu_s_per_video_hour": per_stage,
            "stages_wall_s": {k: steady[f"{k}_s"] for k in per_stage},
        }
        report[mode]["projection"] = projection_of(report[mode], args)
    write_report(report, args.json)


if __name__ == "__main__":
    main()
