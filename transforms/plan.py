"""The data path, decided once from the configuration (pure; no Beam).

    VideoRef -> DecodeAndSegment -> DecidePolicy -> Face -> Transcript -> Voice -> Text -> Fuse

``plan`` says which of the middle steps run (a modality no policy rule enables has no step,
so its model is never loaded), what the decoder must produce (no frames at all without a
face step: ``fps`` 0, so video is not even decoded), which inputs the records carry, and
after which step each input is dropped: the last step that reads it. So the order of the
steps is not encoded in which step drops what, and nothing is carried that no step reads.

Each step declares what it reads (``READS``): the decoded inputs of ``records.INPUTS``.
The transcript step reads the caption text, and the audio when it runs speech recognition
(``transforms/transcript.py`` decides between the two); the text step reads only the
transcript, which the output row keeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from sentistream.transforms.config import DecodeConfig, PipelineConfig
from sentistream.transforms.policy import enabled_anywhere
from sentistream.transforms.records import INPUTS

FACE = "face"
TRANSCRIPT = "transcript"
VOICE = "voice"
TEXT = "text"
# Transcript before text: the text step scores what the transcript step wrote.
ORDER = (FACE, TRANSCRIPT, VOICE, TEXT)

READS: Mapping[str, tuple[str, ...]] = {
    FACE: ("frames",),
    VOICE: ("audio",),
    TEXT: (),
}
TRANSCRIPT_READS = ("caption",)
TRANSCRIPT_READS_ASR = ("caption", "audio")


@dataclass(frozen=True)
class DataPath:
    """What runs and what is carried (see the module docstring).

    Attributes:
        steps: the steps between ``DecidePolicy`` and ``Fuse``, in order (a subset of
            ``ORDER``).
        reads: step -> the inputs it reads.
        decode: the decoder's configuration (``fps`` 0 when no step reads frames).
        asr: whether the transcript step runs speech recognition.
    """

    steps: tuple[str, ...]
    reads: Mapping[str, tuple[str, ...]]
    decode: DecodeConfig
    asr: bool = False

    def __post_init__(self) -> None:
        if list(self.steps) != [s for s in ORDER if s in self.steps]:
            raise ValueError(f"steps must be a subset of {ORDER} in that order, got {self.steps}")
        for step in self.steps:
            unknown = set(self.reads.get(step, ())) - set(INPUTS)
            if unknown:
                raise ValueError(f"step {step!r} reads unknown inputs {sorted(unknown)}")

    @property
    def carried(self) -> tuple[str, ...]:
        """The inputs the decoder attaches to the records: those some step reads."""
        return tuple(i for i in INPUTS if any(i in self.reads.get(s, ()) for s in self.steps))

    def drops_after(self, step: str) -> tuple[str, ...]:
        """The inputs ``step`` is the last reader of: cleared from the record after it."""
        later = self.steps[self.steps.index(step) + 1 :]
        still_read = {i for s in later for i in self.reads.get(s, ())}
        return tuple(i for i in self.reads.get(step, ()) if i not in still_read)


def plan(config: PipelineConfig) -> DataPath:
    """The data path for ``config``."""
    enabled = enabled_anywhere(config.policy)
    asr = config.asr.enabled and TEXT in enabled
    reads: dict[str, tuple[str, ...]] = {}
    for step in ORDER:
        if step == TRANSCRIPT:
            if asr or config.segment.prefer_captions:
                reads[step] = TRANSCRIPT_READS_ASR if asr else TRANSCRIPT_READS
        elif step in enabled:
            reads[step] = READS[step]
    steps = tuple(reads)
    frames = any("frames" in r for r in reads.values())
    decode = config.decode if frames else dataclasses.replace(config.decode, fps=0.0)
    return DataPath(steps=steps, reads=reads, decode=decode, asr=asr)
