"""DecodeVideo + Segment in one streaming step: a ``VideoRef`` in, ``SegmentRecord`` s out.

The file is read once, in chunks (``DecodeConfig.chunk_s``); each channel's segmenter
returns the segments that are final so far, which leave at once with the inputs the
configured steps read (``carry``, from ``transforms/plan.py``: audio, frames, caption
text), and the buffers are trimmed to what a future segment may still need. Memory is
bounded by the chunk and the longest segment, whatever the recording's length. The policy
is not decided here: records leave with ``policy=None`` for the ``DecidePolicy`` step.
After the last segment of a recording that was read to its end comes one
``RecordingEnd`` (its length and segment count), from which the Fuse step makes the
call-level rows: the decoder is what knows that a recording is over.

Any failure becomes a ``DeadLetter`` in the main flow (stage ``decode``); an input that
decodes but yields no segment at all (zero duration) is a dead letter too, so every
input ends as scores or as a dead letter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import Timestamp
from apache_beam.utils.windowed_value import WindowedValue

from sentistream.transforms.allocator import release_free_memory, tune_allocator
from sentistream.transforms.config import (
    DecodeConfig,
    DiarizeConfig,
    LiveConfig,
    PolicyConfig,
    SegmentConfig,
)
from sentistream.transforms.diarization import STAGE_DIARIZE, applies, diarize_recording
from sentistream.transforms.live import LiveCalls, is_live
from sentistream.transforms.media.captions import Cue, find_sidecar, parse_captions
from sentistream.transforms.media.decoding import (
    MediaChunk,
    MediaDecodeError,
    MediaInfo,
    iter_chunks,
)
from sentistream.transforms.media.limits import MediaLimitError, check_allowed, check_local_input
from sentistream.transforms.recording import RecordingSegments
from sentistream.transforms.records import (
    INPUTS,
    DeadLetter,
    Element,
    RecordingEnd,
    SegmentRecord,
    VideoRef,
)

_LOG = logging.getLogger(__name__)


#: Caption files larger than this, or with more cues, are refused (the media is still
#: scored, cut by voice activity): a few hours of dense captions fit well below both.
MAX_CAPTION_BYTES = 16 << 20
MAX_CUES = 20_000
STAGE_CAPTIONS = "captions"
STAGE_DECODE = "decode"
STAGE_SEGMENT = "segment"  # decoded, but no segment at all


class DiarizationError(RuntimeError):
    """The speakers of a recording that is to be diarized could not be found. The
    recording is not scored: scoring it as one speaker could run models the policy keeps
    off for a role."""


class CaptionError(ValueError):
    """A caption file that cannot be used; the message names the file, never its text."""


def load_cues(ref: VideoRef, decode_cfg: DecodeConfig) -> list[Cue]:
    """Caption cues from the ref's ``caption_uri`` or a same-stem sidecar; [] if none.

    Raises:
        CaptionError: naming the caption file and what is wrong with it (outside the
            allowed roots or schemes, unreadable, too large, not UTF-8, not WebVTT / SRT,
            too many cues).
    """
    uri = ref.caption_uri
    if uri is None and "://" not in ref.uri:
        uri = find_sidecar(ref.uri)
    if uri is None:
        return []
    try:
        check_allowed(uri, decode_cfg, "caption file")
    except MediaLimitError as exc:
        raise CaptionError(str(exc)) from None
    try:
        with FileSystems.open(uri) as f:
            data = f.read(MAX_CAPTION_BYTES + 1)
    except Exception as exc:  # noqa: BLE001 - missing, unreadable, a directory, ...
        raise CaptionError(f"caption file {uri!r} cannot be read ({type(exc).__name__})") from None
    if len(data) > MAX_CAPTION_BYTES:
        raise CaptionError(f"caption file {uri!r} is over the {MAX_CAPTION_BYTES} byte limit")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CaptionError(f"caption file {uri!r} is not UTF-8 text (byte {exc.start})") from None
    try:
        cues = parse_captions(text)
    except ValueError as exc:
        raise CaptionError(f"caption file {uri!r}: {exc}") from None
    if len(cues) > MAX_CUES:
        raise CaptionError(f"caption file {uri!r} has {len(cues)} cues, over the {MAX_CUES} limit")
    return cues


def iter_segments(
    ref: VideoRef,
    decode_cfg: DecodeConfig,
    segment_cfg: SegmentConfig,
    policy_cfg: PolicyConfig,
    *,
    carry: Iterable[str] = tuple(INPUTS),
    cues: list[Cue] | None = None,
    diarize_cfg: DiarizeConfig | None = None,
) -> Iterator[SegmentRecord | RecordingEnd]:
    """Stream one recording into segment records, then its ``RecordingEnd`` (pure apart
    from reading the file).

    ``policy_cfg`` gives the role of a channel without one (``default_role``); ``carry``
    names the inputs the records get (``records.INPUTS``; the others stay empty);
    ``cues``: the caption cues already loaded (None: ``load_cues`` when captions are on);
    ``diarize_cfg``: which recordings are diarized first (``transforms/diarization.py``;
    None: none). A failure of the diarization raises ``DiarizationError``.
    """
    if cues is None:
        cues = load_cues(ref, decode_cfg) if segment_cfg.prefer_captions else []
    check_allowed(ref.uri, decode_cfg)
    if "://" not in ref.uri:
        check_local_input(ref.uri, decode_cfg)  # before opening: a FIFO would block it
    with FileSystems.open(ref.uri) as f:
        chunks = iter_chunks(f, decode_cfg)
        info = next(chunks)
        assert isinstance(info, MediaInfo)
        speakers = None
        tracks = RecordingSegments.track_count(info, cues)
        if diarize_cfg is not None and applies(diarize_cfg, policy_cfg, info, tracks, ref):
            try:
                speakers = diarize_recording(
                    ref, decode_cfg, segment_cfg, policy_cfg, diarize_cfg, tracks
                )
            except (MediaDecodeError, MediaLimitError):
                raise  # the media's own fault: a decode dead letter, as without diarization
            except Exception as exc:  # noqa: BLE001 - named by the dead letter's stage
                raise DiarizationError(f"{type(exc).__name__}: {exc}") from exc
        recording = RecordingSegments(
            ref, info, segment_cfg, policy_cfg, carry=carry, cues=cues, speakers=speakers
        )
        for chunk in chunks:
            assert isinstance(chunk, MediaChunk)
            yield from recording.feed(chunk)
    yield recording.end()


class DecodeAndSegmentFn(beam.DoFn):
    """``VideoRef`` -> ``SegmentRecord`` s and its ``RecordingEnd``, or a ``DeadLetter``
    with the reason (no ``RecordingEnd`` then: a recording not read to its end gets no
    call-level row).

    Live input (a ``VideoRef`` with ``live=True``, or a ``CallChunk``) goes to the
    worker's ``LiveCalls`` (``transforms/live.py``); what they have ready leaves with
    every element and at every bundle end, so a live call's rows come while it goes on.

    Counters (namespace ``sentistream.decode``): ``videos``, ``segments``,
    ``dead_letters``, and ``frames``: sampled frames carried by the records (0 when no
    step reads frames).
    """

    def __init__(
        self,
        decode_cfg: DecodeConfig,
        segment_cfg: SegmentConfig,
        policy_cfg: PolicyConfig,
        carry: Iterable[str] = tuple(INPUTS),
        live_cfg: LiveConfig | None = None,
        diarize_cfg: DiarizeConfig | None = None,
    ) -> None:
        self._decode_cfg = decode_cfg
        self._segment_cfg = segment_cfg
        self._policy_cfg = policy_cfg
        self._carry = tuple(carry)
        self._live_cfg = live_cfg or LiveConfig()
        self._diarize_cfg = diarize_cfg
        self._live: LiveCalls | None = None
        self._videos = Metrics.counter("sentistream.decode", "videos")
        self._segments = Metrics.counter("sentistream.decode", "segments")
        self._frames = Metrics.counter("sentistream.decode", "frames")
        self._failures = Metrics.counter("sentistream.decode", "dead_letters")

    def setup(self) -> None:
        tune_allocator()  # on a Dask worker: frames are mapped anew otherwise
        cfgs = (self._decode_cfg, self._segment_cfg, self._policy_cfg, self._live_cfg)
        self._live = LiveCalls(*cfgs, self._carry)

    def teardown(self) -> None:
        if self._live is not None:
            self._live.close()

    def process(self, element: Any) -> Iterator[Element]:
        if is_live(element):
            yield from self._counted(self._live.start_or_add(element))
        else:
            yield from self._decode_file(element)
        yield from self._counted(self._live.poll())

    def finish_bundle(self) -> Iterator[WindowedValue]:
        now = Timestamp.of(time.time())
        for element in self._counted(self._live.poll()):
            yield WindowedValue(element, now, [GlobalWindow()])

    def _counted(self, elements: Iterable[Element]) -> Iterator[Element]:
        for element in elements:
            if isinstance(element, SegmentRecord) and not element.partial:
                self._segments.inc()
                self._frames.inc(len(element.frames))
            elif isinstance(element, DeadLetter):
                self._failures.inc()
            elif isinstance(element, RecordingEnd):
                self._videos.inc()
            yield element

    def _decode_file(self, ref: VideoRef) -> Iterator[SegmentRecord | RecordingEnd | DeadLetter]:
        release_free_memory()  # the previous recording's buffers (a tuned Dask worker)
        self._videos.inc()
        emitted = 0
        stage = STAGE_DECODE
        cues: list[Cue] = []
        if self._segment_cfg.prefer_captions:
            try:
                cues = load_cues(ref, self._decode_cfg)
            except CaptionError as exc:  # the media is still scored, cut by voice activity
                _LOG.warning("captions of %s not used: %s", ref.uri, exc)
                self._failures.inc()
                detail = "; the media was scored without captions (voice activity segments)"
                yield DeadLetter.from_error(ref, STAGE_CAPTIONS, exc, detail=detail)
        try:
            for record in iter_segments(
                ref,
                self._decode_cfg,
                self._segment_cfg,
                self._policy_cfg,
                carry=self._carry,
                cues=cues,
                diarize_cfg=self._diarize_cfg,
            ):
                if isinstance(record, RecordingEnd):
                    if emitted == 0:
                        stage = STAGE_SEGMENT
                        raise ValueError(
                            "the media decoded but has no duration: no segment to score"
                        )
                    yield record
                    continue
                emitted += 1
                self._frames.inc(len(record.frames))
                yield record
        except Exception as exc:  # noqa: BLE001 - any failure of one input is a dead letter
            if isinstance(exc, DiarizationError):
                stage = STAGE_DIARIZE
            _LOG.warning("dead letter for %s at %s: %s", ref.uri, stage, exc)
            self._failures.inc()
            detail = f" after {emitted} segments" if emitted else ""
            yield DeadLetter.from_error(ref, stage, exc, detail=detail)
        finally:
            self._segments.inc(emitted)
