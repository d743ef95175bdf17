"""Every command-line option, in one place: the processing options (decode, segment,
models, policy, fusion) and, at the end, each job's own (batch, stream, demo).

Every option is a ``Flag`` bound to fields of the frozen ``PipelineConfig``
(``transforms/config.py``); its default is read from ``command_line_defaults()``, so no
default is written twice. The same table serves ``sentistream run`` / ``stream`` /
``demo`` and the ``python -m sentistream.pipelines.batch`` / ``...stream`` launches
(Dataflow, Flink): their command lines are parsed once, turned into the frozen config by
``config_from_args``, and the config travels to the workers inside the transforms.
Options these tables do not know are Beam's (``--runner ...``, see ``runner.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

from sentistream.pipelines.flags import Flag, add_flags, from_args, split_csv
from sentistream.transforms.config import (
    DEVICES,
    DIARIZE_MODES,
    FACE_AGGREGATES,
    AsrConfig,
    DecodeConfig,
    FaceConfig,
    ModelRuntime,
    PipelineConfig,
    TextConfig,
    VoiceConfig,
)
from sentistream.transforms.io.kafka_config import IO_CHOICES
from sentistream.transforms.policy import parse_rules
from sentistream.transforms.speakers import format_speaker_roles, parse_speaker_roles

# The local stream runtimes (``stream/runtime.py``): one streaming run, or a loop of
# bounded runs.
RUNTIME_STREAMING = "streaming"
RUNTIME_LOOP = "loop"
RUNTIMES = (RUNTIME_STREAMING, RUNTIME_LOOP)
DEFAULT_RUNTIME = RUNTIME_STREAMING


def cpu_threads(at_most: int, cores: int | None = None) -> int:
    """A default thread count: the cores one worker process may use (``cores``; default
    the CPU count), at most ``at_most``."""
    return max(1, min(at_most, cores or os.cpu_count() or 1))


# Flags whose default follows the cores of a worker process ("auto"), resolved by
# ``config_from_args``: on 2 cores, 2 worker processes with 2 threads each ran captions
# 15x real time, with 1 thread each 24x (benchmarks/scaling.py, docs/scaling.md).
AUTO_THREAD_FLAGS = ("--whisper-threads", "--face-detect-threads", "--decode-threads")


def command_line_defaults(cores: int | None = None) -> PipelineConfig:
    """The defaults of the processing options: the library's own (``PipelineConfig()``),
    except the run-times, sized for a CPU worker process with ``cores`` cores (default:
    the CPU count): one torch thread (the models are small; more processes use more
    cores), batches of 8 (face, voice) and 32 (text), the shared Whisper encoder on up to
    4 CTranslate2 threads, face detection on up to 2 threads, the video decoder on up
    to 4."""
    one = ModelRuntime(threads=1)
    whisper = cpu_threads(4, cores)
    return PipelineConfig(
        decode=DecodeConfig(threads=cpu_threads(4, cores)),
        face=FaceConfig(
            runtime=dataclasses.replace(one, max_batch_size=8),
            detect_threads=cpu_threads(2, cores),
        ),
        voice=VoiceConfig(
            runtime=dataclasses.replace(one, max_batch_size=8), whisper_threads=whisper
        ),
        asr=AsrConfig(runtime=dataclasses.replace(AsrConfig().runtime, threads=whisper)),
        text=TextConfig(runtime=dataclasses.replace(one, max_batch_size=32)),
    )


def format_rules(rules: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    """The ``--policy`` spelling of policy rules (the inverse of ``parse_rules``)."""
    return ";".join(f"{role}={','.join(modalities)}" for role, modalities in rules)


MODEL_FLAGS: tuple[Flag, ...] = (
    Flag("--fps", "decode.fps", "frames per second sampled for faces (0: none)"),
    Flag("--max-side", "decode.max_side", "resize sampled frames to this longer side"),
    Flag("--chunk-seconds", "decode.chunk_s", "decode in chunks of this length"),
    Flag("--max-file-bytes", "decode.max_bytes", "limit: refuse media files larger than this"),
    Flag("--max-duration", "decode.max_duration_s", "limit: refuse media longer than this (s)"),
    Flag("--max-pixels", "decode.max_pixels", "limit: refuse video frames over width x height"),
    Flag("--max-channels", "decode.max_channels", "limit: refuse audio with more channels"),
    Flag(
        "--allow-root",
        "decode.allowed_roots",
        "local media and captions must lie under this folder (repeatable; default: anywhere)",
        repeat=True,
    ),
    Flag(
        "--allow-scheme",
        "decode.allowed_schemes",
        "URI schemes inputs may use (repeatable; default: file gs s3 azfs)",
        repeat=True,
    ),
    Flag(
        "--max-decode-seconds",
        "decode.max_decode_s",
        "limit: wall-clock seconds decoding one input may take",
    ),
    Flag(
        "--live-host",
        "live.allowed_hosts",
        "live stream URLs (live_uri events) may name this host (repeatable; '*': any; "
        "default: live URLs are refused)",
        repeat=True,
    ),
    Flag(
        "--live-stall-timeout",
        "live.stall_timeout_s",
        "a live URL without media for this long has ended (a dead letter says it stalled)",
    ),
    Flag(
        "--live-partial-every",
        "live.partial_every_s",
        "a live turn still open gets a partial row this often, seconds (0: final rows only)",
    ),
    Flag("--live-max-calls", "live.max_calls", "limit: live calls open at once per worker"),
    Flag("--live-max-duration", "live.max_s", "limit: a live call is cut after this long (s)"),
    Flag("--live-gap-timeout", "live.gap_timeout_s", "wait this long for a missing chunk"),
    Flag(
        "--live-idle-timeout",
        "live.idle_timeout_s",
        "a chunked call without chunks for this long has ended",
    ),
    Flag("--segment-min", "segment.min_s", "shortest speech segment, seconds"),
    Flag("--segment-max", "segment.max_s", "longest segment, seconds"),
    Flag(
        "--window-seconds",
        "segment.window_s",
        "fixed windows cover stretches without speech (faces still scored)",
    ),
    Flag("--vad-threshold", "segment.vad_threshold", "Silero VAD speech threshold"),
    Flag(
        "--no-captions",
        "segment.prefer_captions",
        "ignore sidecar captions (.vtt/.srt beside the media) when segmenting",
        negate=True,
    ),
    Flag(
        "--diarize",
        "diarize.mode",
        "speaker diarization: mono (recordings with one audio track), all (also within "
        "each channel), off",
        choices=DIARIZE_MODES,
    ),
    Flag(
        "--speakers",
        "diarize.speakers",
        "number of speakers in every diarized recording, when known ('' : estimated)",
        value_type=int,
        optional=True,
    ),
    Flag(
        "--speaker-roles",
        "diarize.roles",
        "roles of diarized speakers, e.g. 'first=agent,*=customer' (keys first, spk_N, *)",
        parse=parse_speaker_roles,
        show=format_speaker_roles,
    ),
    Flag(
        "--diarize-threshold",
        "diarize.threshold",
        "two halves of a recording this cosine-similar are one speaker",
    ),
    Flag(
        "--device",
        "face.runtime.device",
        "device for every model",
        choices=DEVICES,
        also=(
            "voice.runtime.device",
            "asr.runtime.device",
            "text.runtime.device",
            "diarize.device",
        ),
    ),
    Flag(
        "--threads",
        "face.runtime.threads",
        "torch intra-op threads per worker process (face, voice head, text); the "
        "models are small: 1 is fastest on a busy CPU, use --workers to use more cores",
        also=("voice.runtime.threads", "text.runtime.threads"),
    ),
    Flag(
        "--whisper-threads",
        "voice.whisper_threads",
        "CTranslate2 threads of the Whisper encoder shared by speech recognition and "
        "the voice branch (default: the worker process's cores, at most 4)",
        also=("asr.runtime.threads",),
    ),
    Flag(
        "--face-detect-threads",
        "face.detect_threads",
        "frames whose faces are detected at once (default: the worker process's cores, at most 2)",
    ),
    Flag(
        "--decode-threads",
        "decode.threads",
        "video decoder threads (default: the worker process's cores, at most 4). A worker "
        "process's cores: the CPU count divided by --workers; 1 on a distributed runner, "
        "whose worker processes are one per core",
    ),
    Flag("--face-batch-size", "face.runtime.max_batch_size", "segments per face-model batch"),
    Flag("--voice-batch-size", "voice.runtime.max_batch_size", "segments per voice-model batch"),
    Flag("--text-batch-size", "text.runtime.max_batch_size", "segments per text-model batch"),
    Flag("--face-bundle", "face.bundle", "face model bundle: name or .json path"),
    Flag("--voice-bundle", "voice.bundle", "voice model bundle: name or path"),
    Flag(
        "--voice-clip-alone",
        "voice.channel_normalise",
        "score each voice clip alone, without the channel's running normalisation",
        negate=True,
    ),
    Flag("--text-bundle", "text.bundle", "text model bundle: name or path"),
    Flag(
        "--whisper-model-dir",
        "voice.whisper_model_dir",
        "CTranslate2 Whisper model folder (default: tiny.en shipped offline)",
        optional=True,
    ),
    Flag(
        "--whisper-compute-type",
        "voice.compute_type",
        "CTranslate2 compute type (int8, float16)",
    ),
    Flag(
        "--no-asr",
        "asr.enabled",
        "no speech recognition (words from captions only)",
        negate=True,
    ),
    Flag(
        "--asr-model-dir",
        "asr.model_dir",
        "CTranslate2 Whisper folder for speech recognition (default: tiny.en, offline)",
        optional=True,
    ),
    Flag("--asr-compute-type", "asr.compute_type", "int8 on CPU, float16 on GPU"),
    Flag("--asr-beam-size", "asr.beam_size", "Whisper beam size"),
    Flag(
        "--asr-language",
        "asr.language",
        "spoken language (tiny.en knows English only)",
        optional=True,
    ),
    Flag(
        "--asr-batch-size",
        "asr.runtime.max_batch_size",
        "segments per speech-recognition batch",
    ),
    Flag(
        "--asr-over-captions",
        "asr.prefer_captions",
        "transcribe even segments that have caption text (captions win by default)",
        negate=True,
    ),
    Flag(
        "--face-aggregate",
        "face.aggregate",
        "which face a row gets: the active speaker's (speaker), the largest, or the mean "
        "of all scored faces",
        choices=FACE_AGGREGATES,
    ),
    Flag("--face-tracks", "face.max_faces", "faces scored per segment, largest first (0: all)"),
    Flag(
        "--policy",
        "policy.rules",
        "modalities per speaker role, e.g. 'agent=text;customer=face,voice,text;*=text'",
        parse=parse_rules,
        show=format_rules,
    ),
    Flag("--policy-id", "policy.policy_id", "name recorded in every row's policy_id"),
    Flag("--default-role", "policy.default_role", "role of a channel without a mapped role"),
    Flag(
        "--consent-key",
        "policy.consent_key",
        "metadata key that must be 'true' for face/voice to run (else text only)",
        optional=True,
    ),
    Flag("--neutral-band", "fusion.neutral_band", "|fused valence| below this: neutral"),
    Flag(
        "--fusion-bundle",
        "fusion.bundle",
        "learned late-fusion bundle (e.g. fusion-late-mlp); default: the fixed rule",
        optional=True,
    ),
    Flag(
        "--calibration",
        "fusion.calibration",
        "confidence calibration bundle applied to every confidence column ('' = raw)",
        optional=True,
    ),
    Flag(
        "--fusion-any-components",
        "fusion.allow_other_components",
        "apply the learned fusion to face/voice/text bundles other than those it was trained on",
        switch=True,
    ),
)


def add_model_arguments(parser: Any) -> None:
    """Add the processing options to an argparse parser (or argument group); the
    ``AUTO_THREAD_FLAGS`` default to None: resolved by ``config_from_args``."""
    add_flags(parser, MODEL_FLAGS, command_line_defaults())
    auto = [f.dest for f in MODEL_FLAGS if f.name in AUTO_THREAD_FLAGS]
    parser.set_defaults(**dict.fromkeys(auto))


def config_from_args(args: argparse.Namespace, *, cores: int | None = None) -> PipelineConfig:
    """The frozen config of parsed processing options (raises ``ValueError`` naming a bad
    value, e.g. a malformed ``--policy``). A thread flag not given follows ``cores``, the
    cores of one worker process (default: the CPU count; ``runner.cores_per_worker``)."""
    defaults = command_line_defaults(cores)
    values = vars(args).copy()
    for flag in MODEL_FLAGS:
        if flag.name in AUTO_THREAD_FLAGS and values.get(flag.dest) is None:
            values[flag.dest] = flag.default(defaults)
    return from_args(argparse.Namespace(**values), MODEL_FLAGS, defaults)


# ---------------------------------------------------- the jobs' own options
# Their defaults are the fields of ``BatchSettings`` (``batch.py``), ``StreamSettings``
# (``stream/settings.py``) and ``DemoSettings`` (``demo/local.py``).

BATCH_FLAGS: tuple[Flag, ...] = (
    Flag(
        "--input",
        "inputs",
        "media file, glob or URI (repeatable); default: the built-in sample",
        repeat=True,
    ),
    Flag(
        "--manifest",
        "manifest",
        "JSONL file, one object per input: uri, video_id, channel_roles, metadata, caption_uri",
        optional=True,
    ),
    Flag(
        "--channel-roles",
        "channel_roles",
        "roles of the audio channels for every input, e.g. agent,customer",
        optional=True,
        parse=split_csv,
    ),
    Flag("--output", "output", "output root (local path or URI)"),
    Flag(
        "--workers",
        "workers",
        "local worker processes (FnApiRunner multi-processing when > 1)",
    ),
    Flag(
        "--strict",
        "strict",
        "a bad manifest line or an input glob match that is not a file stops the run "
        "(default: it becomes a dead letter and the other inputs run)",
        switch=True,
    ),
    Flag(
        "--rescore",
        "rescore",
        "score every input again, even those the output already holds scored by the same "
        "models and policy (default: skip them, so a rerun resumes a backfill)",
        switch=True,
    ),
    Flag(
        "--no-progress",
        "progress",
        "no progress line (default: on a terminal, a line with files done, media seconds, "
        "real-time factor and time left; otherwise a log line every 30 s)",
        negate=True,
    ),
)


def _minutes(seconds: float | None) -> float:
    return 0.0 if seconds is None else seconds / 60


def _seconds(minutes: float) -> float | None:
    return minutes * 60 if minutes else None


STREAM_FLAGS: tuple[Flag, ...] = (
    Flag(
        "--bootstrap",
        "bootstrap",
        "Kafka bootstrap servers host:port[,...] (default: start an embedded local broker)",
        optional=True,
    ),
    Flag("--input-topic", "input_topic", "topic of input events"),
    Flag("--output-topic", "output_topic", "topic of score rows"),
    Flag(
        "--dead-letter-topic",
        "dead_letter_topic",
        "topic of dead letters (bad events, failed media)",
    ),
    Flag(
        "--calls-topic",
        "calls_topic",
        "topic of call-level rows (one per recording and speaker, when a recording ends)",
    ),
    Flag(
        "--output",
        "output",
        "Parquet root (scores/, calls/ and dead_letters/ below it); '' for none",
        optional=True,
    ),
    Flag(
        "--group-id",
        "group_id",
        "consumer group holding the committed offsets (this pipeline's alone)",
    ),
    Flag(
        "--runtime",
        "runtime",
        "local runtime: one streaming run, or a loop of bounded runs (docs/streaming.md)",
        choices=RUNTIMES,
    ),
    Flag("--batch-events", "batch_events", "loop runtime: most events per bounded run"),
    Flag(
        "--max-attempts",
        "max_attempts",
        "tries of a failing run before its events run one by one and the failing ones "
        "become dead letters",
    ),
    Flag(
        "--kafka-io",
        "kafka_io",
        "python: kafka-python source/sink (any runner); xlang: Beam's Java KafkaIO "
        "(Dataflow/Flink; needs Java and the expansion service)",
        choices=IO_CHOICES,
    ),
    Flag(
        "--max-run-minutes",
        "max_run_s",
        "streaming runtime: end the run this often and start a fresh one, to bound "
        "memory (0: never; docs/streaming.md)",
        parse=_seconds,
        show=_minutes,
    ),
    Flag(
        "--no-isolate-runs",
        "isolate_runs",
        "streaming runtime: recycle runs in this process instead of a forked child",
        negate=True,
    ),
    Flag(
        "--max-events",
        "max_events",
        "stop after this many events (streaming runtime: per partition)",
        value_type=int,
    ),
    Flag(
        "--idle-timeout",
        "idle_timeout_s",
        "stop after this many seconds without an event",
        value_type=float,
    ),
    Flag(
        "--no-check-exists",
        "check_exists",
        "do not check that the media exists when an event arrives",
        negate=True,
    ),
)


DEMO_FLAGS: tuple[Flag, ...] = (
    Flag(
        "--bootstrap",
        "bootstrap",
        "use this Kafka instead of starting the local broker",
        optional=True,
    ),
    Flag("--output", "output", "Parquet root"),
    Flag(
        "--runtime",
        "runtime",
        "local streaming runtime (docs/streaming.md)",
        choices=RUNTIMES,
    ),
    Flag(
        "--live",
        "live",
        "send the sample's audio as a live call (2 s chunk events, in real time) and show "
        "its rows, partial ones too, while it plays (docs/live.md)",
        switch=True,
    ),
)
