"""Command-line options, turned once into the frozen ``PipelineConfig``.

The same arguments serve the ``sentistream`` CLI (argparse subcommands) and Beam's
``PipelineOptions`` (``SentistreamOptions``), so a job launched on Dataflow or Flink with
``python -m sentistream.pipelines.batch --runner ...`` takes the same flags.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

from sentistream.transforms.config import (
    AsrConfig,
    DecodeConfig,
    FaceConfig,
    FusionConfig,
    ModelRuntime,
    PipelineConfig,
    PolicyConfig,
    SegmentConfig,
    TextConfig,
    VoiceConfig,
)
from sentistream.transforms.policy import parse_rules

DEFAULT_POLICY = "*=face,voice,text"


def default_whisper_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def add_model_arguments(parser: Any) -> None:
    """Add the processing options (decode, segment, models, policy, fusion) to a parser."""
    add = parser.add_argument
    add("--fps", type=float, default=2.0, help="frames per second sampled for faces (0: none)")
    add("--max-side", type=int, default=640, help="resize sampled frames to this longer side")
    add("--chunk-seconds", type=float, default=30.0, help="decode in chunks of this length")
    add("--segment-min", type=float, default=0.4, help="shortest speech segment, seconds")
    add("--segment-max", type=float, default=15.0, help="longest segment, seconds")
    add(
        "--window-seconds",
        type=float,
        default=5.0,
        help="fixed windows cover stretches without speech (faces still scored)",
    )
    add("--vad-threshold", type=float, default=0.5, help="Silero VAD speech threshold")
    add(
        "--no-captions",
        action="store_true",
        help="ignore sidecar captions (.vtt/.srt beside the media) when segmenting",
    )
    add("--device", choices=("cpu", "cuda"), default="cpu", help="device for every model")
    add(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads per worker process (face, voice head, text); the "
        "models are small: 1 is fastest on a busy CPU, use --workers to use more cores",
    )
    add(
        "--whisper-threads",
        type=int,
        default=default_whisper_threads(),
        help="CTranslate2 threads of the Whisper encoder shared by speech recognition and "
        "the voice branch (default: the CPU count, at most 4)",
    )
    add("--face-batch-size", type=int, default=8, help="segments per face-model batch")
    add("--voice-batch-size", type=int, default=8, help="segments per voice-model batch")
    add("--text-batch-size", type=int, default=32, help="segments per text-model batch")
    add("--face-bundle", default=FaceConfig.bundle, help="face model bundle: name or .json path")
    add("--voice-bundle", default=VoiceConfig.bundle, help="voice model bundle: name or path")
    add(
        "--voice-clip-alone",
        action="store_true",
        help="score each voice clip alone, without the channel's running normalisation",
    )
    add("--text-bundle", default=TextConfig.bundle, help="text model bundle: name or path")
    add(
        "--whisper-model-dir",
        default=None,
        help="CTranslate2 Whisper model folder (default: tiny.en shipped offline)",
    )
    add("--whisper-compute-type", default="int8", help="CTranslate2 compute type (int8, float16)")
    add("--no-asr", action="store_true", help="no speech recognition (words from captions only)")
    add(
        "--asr-model-dir",
        default=None,
        help="CTranslate2 Whisper folder for speech recognition (default: tiny.en, offline)",
    )
    add("--asr-compute-type", default="int8", help="int8 on CPU, float16 on GPU")
    add("--asr-beam-size", type=int, default=1, help="Whisper beam size")
    add("--asr-language", default="en", help="spoken language (tiny.en knows English only)")
    add("--asr-batch-size", type=int, default=16, help="segments per speech-recognition batch")
    add(
        "--asr-over-captions",
        action="store_true",
        help="transcribe even segments that have caption text (captions win by default)",
    )
    add(
        "--face-aggregate",
        choices=("largest", "all"),
        default="largest",
        help="score the largest face per frame, or every face",
    )
    add(
        "--policy",
        default=DEFAULT_POLICY,
        help="modalities per speaker role, e.g. 'agent=text;customer=face,voice,text;*=text'",
    )
    add("--policy-id", default="default-all", help="name recorded in every row's policy_id")
    add("--default-role", default="unknown", help="role of a channel without a mapped role")
    add(
        "--consent-key",
        default=None,
        help="metadata key that must be 'true' for face/voice to run (else text only)",
    )
    add("--neutral-band", type=float, default=0.2, help="|fused valence| below this: neutral")
    add(
        "--fusion-bundle",
        default=None,
        help="learned late-fusion bundle (e.g. fusion-late-mlp); default: the fixed rule",
    )


def config_from_args(args: argparse.Namespace | Any) -> PipelineConfig:
    """Build the frozen config from parsed arguments (argparse or PipelineOptions view)."""

    def runtime(batch: int, threads: int | None = None) -> ModelRuntime:
        return ModelRuntime(
            device=args.device,
            min_batch_size=1,
            max_batch_size=batch,
            threads=args.threads if threads is None else threads,
        )

    return PipelineConfig(
        decode=DecodeConfig(fps=args.fps, max_side=args.max_side, chunk_s=args.chunk_seconds),
        segment=SegmentConfig(
            min_s=args.segment_min,
            max_s=args.segment_max,
            window_s=args.window_seconds,
            vad_threshold=args.vad_threshold,
            prefer_captions=not args.no_captions,
        ),
        face=FaceConfig(
            runtime=runtime(args.face_batch_size),
            bundle=args.face_bundle,
            aggregate=args.face_aggregate,
        ),
        voice=VoiceConfig(
            runtime=runtime(args.voice_batch_size),
            bundle=args.voice_bundle,
            whisper_model_dir=args.whisper_model_dir,
            compute_type=args.whisper_compute_type,
            channel_normalise=not args.voice_clip_alone,
            whisper_threads=args.whisper_threads,
        ),
        asr=AsrConfig(
            enabled=not args.no_asr,
            runtime=runtime(args.asr_batch_size, args.whisper_threads),
            model_dir=args.asr_model_dir,
            compute_type=args.asr_compute_type,
            beam_size=args.asr_beam_size,
            language=args.asr_language or None,
            prefer_captions=not args.asr_over_captions,
        ),
        text=TextConfig(runtime=runtime(args.text_batch_size), bundle=args.text_bundle),
        fusion=FusionConfig(neutral_band=args.neutral_band, bundle=args.fusion_bundle),
        policy=PolicyConfig(
            policy_id=args.policy_id,
            rules=parse_rules(args.policy),
            default_role=args.default_role,
            consent_key=args.consent_key,
        ),
    )


class SentistreamOptions(PipelineOptions):
    """The processing options as Beam pipeline options (for ``--runner`` launches)."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        add_model_arguments(parser)
