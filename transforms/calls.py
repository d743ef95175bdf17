"""Call-level rows: one recording and speaker, summed up from its segment rows (pure).

``summarize(rows, end, ...)`` turns the ``ScoreRow`` s of one recording and its
``RecordingEnd`` into one ``CallRow`` per speaker (channel and role). The Fuse step calls
it when the recording's end arrives (``CallSummaries`` below), so batch and streaming make
the same rows the same way, with no grouping step. README "Call-level columns" gives
every column; the rules:

- *Speech* is the time of ``vad`` and ``captions`` segments; ``window`` segments cover
  stretches without speech (faces in silent video) and count for valence, not for talk.
- Valences are duration-weighted means over the segments where that score exists
  (quarters: weighted by each segment's overlap with the quarter of the recording). A
  label comes from the valence by the fusion's neutral band; its confidence is the
  duration-weighted share of scored time whose segments carry that label, each weighted
  by its own confidence: high only when the segments agree and are sure.
- Coverage is the share of the speaker's speech time (all its segment time if it has no
  speech segment) with a score; the missing reason is the one with the most such time.
- Talk time: the speaker's speech; non-talk time: the recording minus the union of all
  speakers' speech. Talk speed: transcript words per minute of the speech that has a
  transcript. Loudness: the speech's mean power in dBFS.
- Interruptions and overlap need separate tracks (a stereo call): turns are a speaker's
  speech segments merged across gaps up to ``TURN_GAP_S``; a turn interrupts when it
  starts while another speaker's turn is in progress and they overlap for at least
  ``INTERRUPTION_MIN_OVERLAP_S`` (back-channel "mm-hm" s are shorter). With one track
  (mono, a captions downmix) both are None: who talked over whom is not known.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from sentistream.models.audio import SILENCE_DBFS
from sentistream.transforms.fusion import label_for
from sentistream.transforms.media.segmenting import KIND_CAPTIONS, KIND_VAD
from sentistream.transforms.records import MODALITIES, RecordingEnd
from sentistream.transforms.rows import metadata_json
from sentistream.transforms.schema import SCHEMA_VERSION, CallRow, ScoreRow

SPEECH_SEGMENTERS = (KIND_VAD, KIND_CAPTIONS)
TURN_GAP_S = 0.5
INTERRUPTION_MIN_OVERLAP_S = 1.0
QUARTERS = 4

Interval = tuple[float, float]
SpeakerKey = tuple[int, str]  # (channel, speaker)


def summary_id(video_id: str, channel: int, speaker: str) -> str:
    """Deterministic id of a call row (the Kafka key; duplicates share it)."""
    key = f"{video_id}|{channel}|{speaker}"
    return hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def _duration(row: ScoreRow) -> float:
    return max(0.0, row.end_s - row.start_s)


def _is_speech(row: ScoreRow) -> bool:
    return row.segmenter in SPEECH_SEGMENTERS


def _mean(pairs: Iterable[tuple[float, float]]) -> float | None:
    """Weighted mean of (value, weight) pairs; None when the weights sum to zero."""
    total = weight = 0.0
    for value, w in pairs:
        total += value * w
        weight += w
    return total / weight if weight > 0 else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def merge(intervals: Iterable[Interval], gap: float = 0.0) -> list[Interval]:
    """Sorted, merged intervals; two closer than ``gap`` become one."""
    out: list[list[float]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(s, e) for s, e in out]


def _total(intervals: Sequence[Interval]) -> float:
    return sum(e - s for s, e in intervals)


def _overlap(a: Sequence[Interval], b: Sequence[Interval]) -> float:
    """Total time in both of two merged interval lists."""
    i = j = 0
    total = 0.0
    while i < len(a) and j < len(b):
        total += max(0.0, min(a[i][1], b[j][1]) - max(a[i][0], b[j][0]))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def interruptions(turns: dict[SpeakerKey, list[Interval]]) -> dict[SpeakerKey, tuple[int, float]]:
    """Per speaker: how many of its turns interrupt another speaker (see the module
    docstring), and how long it talks over the others in all. O(n log n) in the turns."""
    out: dict[SpeakerKey, tuple[int, float]] = {}
    for key, own in turns.items():
        others = merge(t for k, ts in turns.items() if k != key for t in ts)
        starts = [s for s, _ in others]
        count = 0
        for start, end in own:
            i = bisect.bisect_left(starts, start) - 1  # the other talk begun before `start`
            if i >= 0 and start < others[i][1]:
                count += min(others[i][1], end) - start >= INTERRUPTION_MIN_OVERLAP_S
        out[key] = (count, round(_overlap(own, others), 3))
    return out


def _quarters(scored: Sequence[tuple[ScoreRow, float]], duration_s: float) -> list[float | None]:
    """Fused valence per quarter of the recording, weighted by overlap with the quarter."""
    edges = [duration_s * k / QUARTERS for k in range(QUARTERS + 1)]
    return [
        _mean((v, max(0.0, min(r.end_s, hi) - max(r.start_s, lo))) for r, v in scored)
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]


def _label_summary(
    rows: Sequence[ScoreRow],
    value: Callable[[ScoreRow], float | None],
    confidence: Callable[[ScoreRow], float | None],
    label: Callable[[ScoreRow], str],
    neutral_band: float,
) -> tuple[float | None, str | None, float | None]:
    """(valence, label, confidence) of one score column over the speaker's rows."""
    scored = [r for r in rows if value(r) is not None and _duration(r) > 0]
    valence = _mean((value(r), _duration(r)) for r in scored)  # type: ignore[misc]
    if valence is None:
        return None, None, None
    call_label = label_for(valence, neutral_band)
    agree = sum(_duration(r) * (confidence(r) or 0.0) for r in scored if label(r) == call_label)
    return round(valence, 4), call_label, round(agree / sum(map(_duration, scored)), 4)


def _coverage(basis: Sequence[ScoreRow], modality: str) -> tuple[float, str | None]:
    """Share of ``basis`` time with a ``modality`` score, and the reason most of the rest
    has none."""
    total = sum(map(_duration, basis))
    covered = sum(_duration(r) for r in basis if getattr(r, f"{modality}_present"))
    missing: dict[str, float] = defaultdict(float)
    for r in basis:
        reason = getattr(r, f"{modality}_reason")
        if not getattr(r, f"{modality}_present") and reason:
            missing[reason] += _duration(r)
    top = max(sorted(missing), key=missing.__getitem__) if missing else None
    return (round(covered / total, 4) if total > 0 else 0.0), top


def _loudness(speech: Sequence[ScoreRow]) -> float | None:
    power = _mean(
        (10 ** (r.speech_level_dbfs / 10), _duration(r))
        for r in speech
        if r.speech_level_dbfs is not None
    )
    if power is None:
        return None
    return round(max(SILENCE_DBFS, 10 * math.log10(power)) if power > 0 else SILENCE_DBFS, 2)


def _ids(rows: Sequence[ScoreRow], column: str) -> str | None:
    ids = sorted({getattr(r, column) for r in rows if getattr(r, column)})
    return ",".join(ids) if ids else None


def summarize(
    rows: Sequence[ScoreRow],
    end: RecordingEnd,
    *,
    neutral_band: float,
    processed_at: float,
) -> list[CallRow]:
    """One ``CallRow`` per speaker of the recording ``end`` closes (see the module
    docstring); ``rows`` are its segment rows (the order does not matter)."""
    by_speaker: dict[SpeakerKey, list[ScoreRow]] = defaultdict(list)
    for row in rows:
        by_speaker[(row.channel, row.speaker)].append(row)
    turns = {
        key: merge(((r.start_s, r.end_s) for r in rs if _is_speech(r)), TURN_GAP_S)
        for key, rs in by_speaker.items()
    }
    all_speech = merge(t for ts in turns.values() for t in ts)
    non_talk = max(0.0, end.duration_s - _total(all_speech))
    overlaps = interruptions(turns) if end.tracks > 1 else {}
    complete = end.complete and len(rows) == end.segments
    # Speakers: those who speak (the windows without speech of a diarized recording are
    # nobody's); a recording with no speech at all counts its one (or per channel) row.
    talkers = sum(1 for ts in turns.values() if ts) or len(by_speaker)
    out = []
    for (channel, speaker), rs in sorted(by_speaker.items()):
        rs = sorted(rs, key=lambda r: (r.start_s, r.end_s))
        speech = [r for r in rs if _is_speech(r)]
        fused = [(r, r.fused_valence) for r in rs if r.fused_valence is not None]
        quarters = _quarters(fused, end.duration_s)
        worst = min(fused, key=lambda rv: rv[1], default=None)
        best = max(fused, key=lambda rv: rv[1], default=None)
        fused_summary = _label_summary(
            rs,
            lambda r: r.fused_valence,
            lambda r: r.fused_confidence,
            lambda r: r.fused_label,
            neutral_band,
        )
        fields: dict[str, object] = {}
        for m in MODALITIES:
            valence, label, confidence = _label_summary(
                rs,
                lambda r, m=m: getattr(r, f"{m}_valence") if getattr(r, f"{m}_present") else None,
                lambda r, m=m: getattr(r, f"{m}_confidence"),
                lambda r, m=m: label_for(getattr(r, f"{m}_valence"), neutral_band),
                neutral_band,
            )
            covered, missing = _coverage(speech or rs, m)
            fields |= {
                f"{m}_valence": valence,
                f"{m}_label": label,
                f"{m}_confidence": confidence,
                f"{m}_coverage": covered,
                f"{m}_missing_reason": missing,
            }
        for name, extreme in (("most_negative", worst), ("most_positive", best)):
            fields |= {
                f"{name}_segment_id": extreme[0].segment_id if extreme else None,
                f"{name}_start_s": extreme[0].start_s if extreme else None,
                f"{name}_valence": _round(extreme[1]) if extreme else None,
            }
        fields |= {f"valence_q{k}": _round(q) for k, q in enumerate(quarters, start=1)}
        first, last = quarters[0], quarters[-1]
        with_words = [r for r in speech if r.transcript and r.transcript.strip()]
        words = sum(len(r.transcript.split()) for r in with_words if r.transcript)
        words_time = sum(map(_duration, with_words))
        interrupts = overlaps.get((channel, speaker))
        out.append(
            CallRow(
                schema_version=SCHEMA_VERSION,
                summary_id=summary_id(rs[0].video_id, channel, speaker),
                video_id=rs[0].video_id,
                source_uri=rs[0].source_uri,
                channel=channel,
                speaker=speaker,
                role=rs[0].role,
                recording_duration_s=end.duration_s,
                speakers=talkers,
                segments=len(rs),
                complete=complete,
                fused_valence=fused_summary[0],
                fused_label=fused_summary[1] or "unknown",
                fused_confidence=fused_summary[2],
                trend=_round(last - first) if first is not None and last is not None else None,
                talk_time_s=round(_total(merge((r.start_s, r.end_s) for r in speech)), 3),
                non_talk_time_s=round(non_talk, 3),
                words=words,
                talk_speed_wpm=round(words / (words_time / 60), 1) if words_time > 0 else None,
                interruptions=interrupts[0] if interrupts else None,
                overlap_s=interrupts[1] if interrupts else None,
                loudness_dbfs=_loudness(speech),
                policy_id=_ids(rs, "policy_id") or "",
                face_model_id=_ids(rs, "face_model_id"),
                voice_model_id=_ids(rs, "voice_model_id"),
                text_model_id=_ids(rs, "text_model_id"),
                fusion_model_id=_ids(rs, "fusion_model_id") or "",
                metadata_json=metadata_json(end.ref.metadata),
                event_time=end.ref.event_time,
                processed_at=processed_at,
                **fields,  # type: ignore[arg-type]
            )
        )
    return out


class OpenRecordings:
    """The segment rows of recordings whose ``RecordingEnd`` has not come yet.

    The Fuse step keeps one. Every element of a recording file comes from one call of the
    decoder, so its rows and its end arrive in the same bundle, in order (the steps in
    between are fused per-element steps), and ``end_bundle`` forgets what is left. A
    live call spans many bundles: its rows are kept until its end (``live``). Memory:
    the rows of one bundle's recordings, and of the open live calls (a few hundred bytes
    of text per segment row).
    """

    def __init__(self) -> None:
        self._rows: dict[str, list[ScoreRow]] = {}
        self._live: set[str] = set()

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: ScoreRow, *, live: bool = False) -> None:
        self._rows.setdefault(row.video_id, []).append(row)
        if live:
            self._live.add(row.video_id)

    def end_bundle(self) -> int:
        """Forget the recordings (not live calls) still open; returns how many."""
        stale = [vid for vid in self._rows if vid not in self._live]
        for vid in stale:
            del self._rows[vid]
        return len(stale)

    def close(
        self, end: RecordingEnd, *, neutral_band: float, processed_at: float
    ) -> list[CallRow]:
        """The call rows of the recording ``end`` closes; its rows are forgotten."""
        self._live.discard(end.ref.resolved_id)
        rows = self._rows.pop(end.ref.resolved_id, [])
        if not rows:
            return []
        return summarize(rows, end, neutral_band=neutral_band, processed_at=processed_at)

    def discard(self, video_id: str) -> None:
        """Forget a recording that ended as a dead letter (no call row for it)."""
        self._rows.pop(video_id, None)
        self._live.discard(video_id)
