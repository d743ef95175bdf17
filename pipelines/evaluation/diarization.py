"""Diarization error rate on conversations built from real utterances: ``sentistream
evaluate diarization --data ../shared/data``.

No recording in the shared data has two people talking, so conversations are built the
way a mono call sounds: utterances of 2 or 3 different speakers of one corpus, 1-3
utterances a turn (each trimmed to its voiced part by the segmenter's VAD, 0.2 s apart),
turns 0.2-1.2 s apart, 15 % of them overlapping the previous turn by 0.2-0.7 s, each
speaker at its own level (0 to -8 dB), mixed to one 16 kHz track. The reference is each
utterance's voiced span.

Speakers are split so the threshold is tuned on some and measured on others
(``POOLS``): ``tune`` is RAVDESS actors 01-10; ``eval`` is RAVDESS actors 11-22, all of
Emo-DB (German) and TESS (two women saying single words). DER is scored with a 0.25 s
collar, overlap included (``models/speaker/der.py``), through the decoder's own first
pass and clustering (``transforms/diarization.py``), so the figures are those of the rows
a run writes; pieces are cut from each voice-activity turn exactly as the rows are.
"""

from __future__ import annotations

import csv
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sentistream.models.audio import SAMPLE_RATE, read_audio, speech_timestamps
from sentistream.models.speaker.der import DEFAULT_COLLAR_S, der
from sentistream.models.speaker.diarize import timeline_of
from sentistream.pipelines.demo.synth import write_media
from sentistream.transforms.config import PipelineConfig
from sentistream.transforms.diarization import TrackEmbeddings, embed_recording
from sentistream.transforms.records import VideoRef
from sentistream.transforms.speakers import speaker_label

#: pool -> corpus -> speakers (None: all of the corpus's speakers)
POOLS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "tune": {"ravdess": tuple(f"{a:02d}" for a in range(1, 11))},
    "eval": {
        "ravdess": tuple(f"{a:02d}" for a in range(11, 23)),
        "emodb": None,
        "tess": None,
    },
}
OVERLAP_SHARE = 0.15


@dataclass(frozen=True)
class Conversation:
    """A built conversation: its file, corpus, speakers and reference segments."""

    path: str
    corpus: str
    speakers: tuple[str, ...]
    reference: tuple[tuple[float, float, str], ...]

    @property
    def duration_s(self) -> float:
        return max(e for _, e, _ in self.reference)


def corpus_speakers(data: Path, corpus: str) -> dict[str, list[Path]]:
    """speaker -> utterance files of one corpus of the shared data."""
    out: dict[str, list[Path]] = {}
    if corpus == "tess":
        for folder in sorted((data / "tess").iterdir()):
            if folder.is_dir():
                out.setdefault(folder.name.split("_")[0], []).extend(sorted(folder.glob("*.wav")))
        return out
    folder = data / ("ravdess_audio" if corpus == "ravdess" else corpus)
    with (folder / "labels.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            spk = f"{int(row['actor']):02d}" if corpus == "ravdess" else row["speaker"]
            out.setdefault(spk, []).append(folder / row["path"])
    return out


def voiced(audio: np.ndarray) -> np.ndarray:
    """The utterance from its first to its last voiced sample (the segmenter's VAD)."""
    spans = speech_timestamps(audio)
    if not spans:
        return audio
    return audio[round(spans[0][0] * SAMPLE_RATE) : round(spans[-1][1] * SAMPLE_RATE)]


def mix_conversation(
    utterances: Callable[[str], np.ndarray],
    speakers: Sequence[str],
    rng: random.Random,
    *,
    turns: int,
) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """A mono mix of ``turns`` turns among ``speakers`` (``utterances(speaker)`` gives the
    next voiced utterance of one), and its reference segments."""
    gains = {s: 10 ** (-rng.uniform(0, 8) / 20) for s in speakers}
    placed: list[tuple[int, np.ndarray, str]] = []
    cursor, last = 0.5, None
    for _ in range(turns):
        spk = rng.choice([s for s in speakers if s != last])
        if last is not None and rng.random() < OVERLAP_SHARE:
            cursor -= rng.uniform(0.2, 0.7)
        else:
            cursor += rng.uniform(0.2, 1.2)
        for k in range(rng.randint(1, 3)):
            audio = utterances(spk) * gains[spk]
            cursor += 0.2 if k else 0.0
            placed.append((round(cursor * SAMPLE_RATE), audio, spk))
            cursor += len(audio) / SAMPLE_RATE
        last = spk
    n = max(start + len(a) for start, a, _ in placed) + SAMPLE_RATE // 2
    mix = np.zeros(n, np.float32)
    reference = []
    for start, audio, spk in placed:
        mix[start : start + len(audio)] += audio
        reference.append((start / SAMPLE_RATE, (start + len(audio)) / SAMPLE_RATE, spk))
    peak = float(np.abs(mix).max())
    return (mix * (0.9 / peak) if peak > 0.9 else mix), sorted(reference)


def build_conversations(
    data: Path, out: Path, pool: str, n_speakers: int, count: int, seed: int = 0
) -> list[Conversation]:
    """``count`` conversations of ``n_speakers`` speakers from ``POOLS[pool]``, written to
    ``out`` as WAV (never committed: the data's licences forbid it)."""
    rng = random.Random(f"{seed}-{pool}-{n_speakers}")
    out.mkdir(parents=True, exist_ok=True)
    corpora = {}
    for corpus, keep in POOLS[pool].items():
        files = corpus_speakers(data, corpus)
        files = {s: f for s, f in files.items() if keep is None or s in keep}
        if len(files) >= n_speakers:
            corpora[corpus] = files
    convs = []
    cache: dict[Path, np.ndarray] = {}
    for i in range(count):
        corpus = sorted(corpora)[i % len(corpora)]
        files = corpora[corpus]
        speakers = tuple(sorted(rng.sample(sorted(files), n_speakers)))

        def utterance(spk: str, files: dict[str, list[Path]] = files) -> np.ndarray:
            path = rng.choice(files[spk])
            if path not in cache:
                cache[path] = voiced(read_audio(path))
            return cache[path]

        mix, reference = mix_conversation(utterance, speakers, rng, turns=8 + 4 * n_speakers)
        path = out / f"{pool}-{n_speakers}spk-{i:03d}-{corpus}.wav"
        write_media(path, frames=None, audio=mix)
        convs.append(Conversation(str(path), corpus, speakers, tuple(reference)))
    return convs


def hypothesis(track: TrackEmbeddings, timeline: Any, min_piece_s: float) -> list[tuple]:
    """The diarized pieces of each voice-activity turn, as the rows have them."""
    return [
        (p.start_s, p.end_s, speaker_label(p.speaker))
        for start, end in track.turns
        for p in timeline.split(start, end, min_piece_s)
    ]


def _score(
    convs: Sequence[Conversation],
    embedded: Sequence[TrackEmbeddings],
    cfg: PipelineConfig,
    threshold: float,
    oracle: bool,
) -> dict[str, Any]:
    errors = scored = 0.0
    parts = {"missed": 0.0, "false_alarm": 0.0, "confusion": 0.0}
    count_right = 0
    for conv, track in zip(convs, embedded, strict=True):
        timeline = timeline_of(
            track.windows,
            track.embeddings,
            speakers=len(conv.speakers) if oracle else None,
            threshold=threshold,
            max_speakers=cfg.diarize.max_speakers,
        )
        hyp = hypothesis(track, timeline, cfg.diarize.min_piece_s)
        m = der(conv.reference, hyp, collar=DEFAULT_COLLAR_S)
        errors += m["der"] * m["scored_s"]
        scored += m["scored_s"]
        for k in parts:
            parts[k] += m[k] * m["scored_s"]
        count_right += int(timeline.speakers == len(conv.speakers))
    return {
        "der": round(errors / max(scored, 1e-9), 4),
        **{k: round(v / max(scored, 1e-9), 4) for k, v in parts.items()},
        "speaker_count_accuracy": round(count_right / max(len(convs), 1), 3),
        "conversations": len(convs),
        "audio_s": round(sum(c.duration_s for c in convs), 1),
    }


def evaluate_diarization(
    data: Path,
    work: Path,
    cfg: PipelineConfig,
    *,
    count: int = 20,
    seed: int = 0,
    sweep: Sequence[float] = (),
) -> dict[str, Any]:
    """The DER report: per pool and speaker count, estimated and oracle speaker counts,
    per corpus of the eval pool, the cost per audio minute, and (``sweep``) DER by
    threshold on the tune pool."""
    report: dict[str, Any] = {
        "threshold": cfg.diarize.threshold,
        "collar_s": DEFAULT_COLLAR_S,
        "bundle": cfg.diarize.bundle,
        "pools": {p: {c: list(s) if s else "all" for c, s in v.items()} for p, v in POOLS.items()},
        "results": {},
    }
    embed_s = audio_s = 0.0
    for pool in POOLS:
        for n_spk in (2, 3):
            convs = build_conversations(data, work / pool, pool, n_spk, count, seed)
            embedded = []
            for conv in convs:
                start = time.perf_counter()
                ref = VideoRef(uri=conv.path)
                track = embed_recording(ref, cfg.decode, cfg.segment, cfg.policy, cfg.diarize, 1)[0]
                timeline_of(track.windows, track.embeddings, threshold=cfg.diarize.threshold)
                embed_s += time.perf_counter() - start
                embedded.append(track)
                audio_s += conv.duration_s
            key = f"{pool}/{n_spk}spk"
            th = cfg.diarize.threshold
            report["results"][key] = {
                "estimated": _score(convs, embedded, cfg, th, oracle=False),
                "oracle_count": _score(convs, embedded, cfg, th, oracle=True),
            }
            if pool == "eval":
                for corpus in sorted({c.corpus for c in convs}):
                    idx = [i for i, c in enumerate(convs) if c.corpus == corpus]
                    sub = ([convs[i] for i in idx], [embedded[i] for i in idx])
                    report["results"][f"{key}/{corpus}"] = {
                        "estimated": _score(*sub, cfg, th, oracle=False)
                    }
            if pool == "tune" and sweep:
                report.setdefault("sweep", {})[key] = {
                    str(t): _score(convs, embedded, cfg, t, oracle=False)["der"] for t in sweep
                }
    report["cost"] = {
        "first_pass_s_per_audio_minute": round(embed_s / max(audio_s / 60, 1e-9), 3),
        "audio_minutes": round(audio_s / 60, 1),
    }
    return report


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


def markdown(report: dict[str, Any]) -> str:
    """The report as the Markdown table docs/diarization.md shows."""
    lines = [
        f"Threshold {report['threshold']}, collar {report['collar_s']} s, "
        f"bundle `{report['bundle']}`.",
        "",
        "| speakers | conversations | audio | DER | missed | false alarm | confusion "
        "| speaker count right | DER, count given |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in report["results"].items():
        est, oracle = r["estimated"], r.get("oracle_count")
        given = f"{oracle['der']:.1%}" if oracle else ""
        lines.append(
            f"| {key} | {est['conversations']} | {est['audio_s'] / 60:.1f} min "
            f"| **{est['der']:.1%}** | {est['missed']:.1%} | {est['false_alarm']:.1%} "
            f"| {est['confusion']:.1%} | {est['speaker_count_accuracy']:.0%} | {given} |"
        )
    for key, by_t in report.get("sweep", {}).items():
        lines += ["", f"Sweep on {key}: " + ", ".join(f"{t}: {d:.1%}" for t, d in by_t.items())]
    cost = report["cost"]
    lines += [
        "",
        f"First pass (audio decode, voice activity, embeddings) and clustering: "
        f"{cost['first_pass_s_per_audio_minute']} s per audio minute "
        f"({cost['audio_minutes']} min measured).",
        "",
    ]
    return "\n".join(lines)
