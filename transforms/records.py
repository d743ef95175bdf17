"""Typed records that flow between the pipeline's transforms.

The flow is linear (see ``transforms/score.py``): a ``VideoRef`` is decoded and cut into
``SegmentRecord`` s carrying the inputs the configured steps read (``INPUTS``), then one
``RecordingEnd`` once the recording was read to its end; the policy step records which
modalities may run; each later step reads its input from the record and returns a copy
with its result added and the inputs no later step reads dropped (``transforms/plan.py``
decides which); the fusion step turns the record into a ``ScoreRow``, and a
``RecordingEnd`` into the recording's call-level rows (``transforms/calls.py``). A
failure anywhere becomes a ``DeadLetter``; later steps pass dead letters and recording
ends through untouched, so every input ends as scores or as a dead letter.

No Beam imports here: these are plain frozen dataclasses, cheap to pickle.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np

MODALITIES: tuple[str, ...] = ("face", "voice", "text")

# The decoded inputs a record may carry, with the value a record holds once one is dropped.
INPUTS: dict[str, object] = {"frames": (), "audio": None, "caption": None}

# Why a modality has no score for a segment. Stable strings: they land in the output.
REASON_DISABLED_BY_POLICY = "disabled_by_policy"
REASON_NO_VIDEO = "no_video_stream"
REASON_NO_FACE = "no_face"
REASON_FACE_NOT_TIED = "face_not_tied_to_speaker"  # several faces, none clearly talking
REASON_NO_AUDIO = "no_audio_stream"
REASON_SILENCE = "silence"
REASON_TOO_SHORT = "too_short"
REASON_NO_TRANSCRIPT = "no_transcript"
REASON_NO_SPEECH = "no_speech"
REASON_INVALID_AUDIO = "invalid_audio"  # samples that are NaN or infinite
REASON_MODEL_ERROR = "model_error"


@dataclass(frozen=True)
class VideoRef:
    """A pointer to one media file (or stream chunk) to analyse.

    Attributes:
        uri: local path or any URI Beam's ``FileSystems`` can open (gs://, s3://, ...).
        video_id: stable id; defaults to a hash of the uri.
        caption_uri: optional sidecar transcript (WebVTT or SRT). When ``None`` the decoder
            looks for ``<stem>.vtt`` / ``<stem>.srt`` beside the media.
        channel_roles: role per audio channel, e.g. ``("agent", "customer")`` for a stereo
            call recording. ``None``: every channel gets ``default_role`` from the config.
        metadata: free-form source metadata (source name, consent flags, ...), copied
            into the output as JSON.
        event_time: event timestamp (seconds since epoch) from the source, if any.
        live: the uri is a live stream (HLS, RTSP, RTMP, SRT, ...) read until it ends or
            stalls, or (for chunked calls) the call whose chunks arrive as events.
        origin: the Kafka record (topic, partition, offset) the event came from, if any:
            a live call holds back the commit of its offset until it is over.
        speakers: how many people speak in it, when known (diarization then finds
            exactly that many); None: estimated, or the run's ``--speakers``.
        speaker_roles: role rules for its diarized speakers (``"first=agent,*=customer"``);
            None: the run's ``--speaker-roles``.
    """

    uri: str
    video_id: str | None = None
    caption_uri: str | None = None
    channel_roles: tuple[str, ...] | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    event_time: float | None = None
    live: bool = False
    origin: tuple[str, int, int] | None = None
    speakers: int | None = None
    speaker_roles: str | None = None

    @property
    def resolved_id(self) -> str:
        if self.video_id:
            return self.video_id
        # surrogatepass: a path that is not valid UTF-8 still has a stable id
        return hashlib.sha1(self.uri.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class Frame:
    """One sampled video frame: RGB uint8 array of shape (H, W, 3) at ``t`` seconds."""

    t: float
    rgb: np.ndarray


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    end_s: float
    probability: float


@dataclass(frozen=True)
class Transcript:
    """What was said in a segment.

    ``source`` is ``"captions"`` (sidecar file), ``"asr"`` (speech recognition) or
    ``"none"``; ``confidence`` is the ASR's (1.0 for captions).
    """

    text: str
    source: str
    confidence: float
    language: str = "en"
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class ModalityResult:
    """One modality's output for one segment.

    ``valence`` is in [-1, 1] (negative .. positive); ``confidence`` in [0, 1]. When
    ``present`` is False, ``valence``/``confidence`` are None and ``reason`` says why.
    ``probs`` holds the model's class probabilities (label -> p), ``detail`` any extra
    model-specific facts worth keeping (e.g. which face was scored).
    """

    modality: str
    present: bool
    valence: float | None = None
    confidence: float | None = None
    arousal: float | None = None
    reason: str | None = None
    model_id: str | None = None
    probs: Mapping[str, float] = field(default_factory=dict)
    detail: Mapping[str, object] = field(default_factory=dict)

    @staticmethod
    def absent(modality: str, reason: str, model_id: str | None = None) -> ModalityResult:
        return ModalityResult(modality=modality, present=False, reason=reason, model_id=model_id)


@dataclass(frozen=True)
class PolicyDecision:
    """Which modalities run for a segment, under which named policy rule, and why."""

    policy_id: str
    enabled: tuple[str, ...]
    rule: str

    def allows(self, modality: str) -> bool:
        return modality in self.enabled


@dataclass(frozen=True)
class SegmentRecord:
    """One analysis segment of one channel of one recording.

    Attributes:
        ref: the input it came from.
        segment_id: deterministic id (see ``make_segment_id``).
        channel: audio channel index (0 for mono / video-only).
        speaker: the speaker's role (``agent``, ``customer``, ``unknown``, ...): the channel's,
            or a diarized speaker's (``transforms/speakers.py``); the policy decides on it.
        speaker_id: the diarized speaker within the recording (``spk_0``, ``spk_1``, ... by
            first appearance); None when the recording (or this stretch) was not diarized.
        start_s, end_s: time range in the recording, seconds.
        segmenter: how the range was found: ``captions``, ``vad``, ``window``.
        has_video / has_audio: whether the container had such a stream at all.
        policy: which modalities may run; None until the policy step decided it.
        audio: input: 16 kHz mono float32 samples of this channel in the range; None when
            the recording has no audio or no step reads it (or after its last reader).
        frames: input: sampled frames whose time falls in the range (none when no step
            reads them, or after the face step).
        caption: input: the caption cue's text for a ``captions`` segment (read by the
            transcript step, which decides between it and speech recognition).
        level_dbfs: the segment's audio level, RMS in dB relative to full scale
            (``audio_level_dbfs``); None without audio.
        transcript: what was said, set by the transcript step.
        results: modality name -> result, added by each step.
        partial: a live turn still open: the row covers it so far and its final row, with
            the same ``segment_id``, replaces it.
    """

    ref: VideoRef
    segment_id: str
    channel: int
    speaker: str
    start_s: float
    end_s: float
    segmenter: str
    has_video: bool
    has_audio: bool
    policy: PolicyDecision | None = None
    audio: np.ndarray | None = None
    frames: tuple[Frame, ...] = ()
    caption: str | None = None
    level_dbfs: float | None = None
    transcript: Transcript | None = None
    results: Mapping[str, ModalityResult] = field(default_factory=dict)
    partial: bool = False
    speaker_id: str | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def allows(self, modality: str) -> bool:
        """Whether the policy lets ``modality`` run for this segment."""
        if self.policy is None:
            raise ValueError(
                f"segment {self.segment_id}: no policy decision yet; the policy step "
                "(transforms.policy.apply_policy) must run before the modality steps"
            )
        return self.policy.allows(modality)

    def dropping(self, inputs: Iterable[str]) -> SegmentRecord:
        """A copy without the named ``INPUTS`` (the record itself when there are none)."""
        empty = {name: INPUTS[name] for name in inputs}
        return dataclasses.replace(self, **empty) if empty else self  # type: ignore[arg-type]

    def with_result(
        self, result: ModalityResult, drop: Iterable[str] = (), **changes: object
    ) -> SegmentRecord:
        """A copy with ``result`` added, the ``drop`` inputs cleared and any field in
        ``changes`` replaced."""
        results = dict(self.results)
        results[result.modality] = result
        fields = {name: INPUTS[name] for name in drop} | changes
        return dataclasses.replace(self, results=results, **fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class RecordingEnd:
    """The decoder read a recording to its end: what the call-level step needs besides
    the segments (which all came before it: in the same bundle for a file, in earlier
    bundles too for a live call).

    Attributes:
        ref: the input.
        duration_s: decoded length of the recording, seconds.
        segments: how many segment records the decoder emitted for it.
        tracks: audio tracks segmented separately (channels; 1 for mono, a downmix or no
            audio).
        complete: False when part of the media never came or the source ended badly (a
            live call's gap or stall; its dead letter says which).
    """

    ref: VideoRef
    duration_s: float
    segments: int
    tracks: int
    complete: bool = True


@dataclass(frozen=True)
class DeadLetter:
    """An input (or part of one) that could not be processed, and why."""

    uri: str
    video_id: str
    stage: str
    error_type: str
    error: str
    segment_id: str | None = None
    payload: str | None = None

    @staticmethod
    def from_error(
        ref: VideoRef,
        stage: str,
        exc: BaseException,
        *,
        segment_id: str | None = None,
        detail: str = "",
    ) -> DeadLetter:
        """The dead letter of ``ref`` failing at ``stage`` with ``exc`` (``detail`` is
        appended to the message)."""
        return DeadLetter(
            uri=ref.uri,
            video_id=ref.resolved_id,
            stage=stage,
            error_type=type(exc).__name__,
            error=f"{exc}{detail}",
            segment_id=segment_id,
        )


#: What flows between the steps: segment records, and dead letters and recording ends,
#: which every step passes through untouched.
Element: TypeAlias = SegmentRecord | DeadLetter | RecordingEnd


def make_segment_id(
    video_id: str,
    channel: int,
    start_s: float,
    segmenter_version: str,
    ordinal: int = 0,
) -> str:
    """Deterministic segment id, unique per real segment of a recording: the same input
    and segmenter always give the same id, and two segments of one channel differ in
    start or ``ordinal`` (the how-many-th span with the same start, for caption cues
    that repeat a timing).

    The end time is not part of it: a live turn still growing gets ``partial`` rows under
    the id its final row will have, so the final row replaces them (a compacted topic
    keeps one). Times are rounded to milliseconds so float noise cannot change the id.
    """
    key = f"{video_id}|{channel}|{round(start_s * 1000)}|{segmenter_version}|{ordinal}"
    return hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:20]
