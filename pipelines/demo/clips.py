"""Talking-head clips with spoken sentences, for benchmarks and tests (needs the ``demo``
extra: espeak-ng speech, scikit-image's astronaut portrait)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sentistream.models.audio import SAMPLE_RATE as RATE
from sentistream.pipelines.demo import synth
from sentistream.transforms.media.captions import Cue


def spoken_track(
    sentences: Sequence[str],
    *,
    duration_s: float,
    start_s: float = 0.5,
    gap_s: float = 0.5,
    repeat: bool = False,
    voices: Sequence[str] = ("en-us",),
) -> tuple[np.ndarray, list[Cue]]:
    """A mono 16 kHz track of ``duration_s`` with ``sentences`` spoken one after another
    from ``start_s``, ``gap_s`` apart (``repeat``: over again until 1 s before the end),
    and one cue per sentence (the time its speech sounds, cut at the end of the track).
    Sentence ``i`` is spoken by the espeak-ng voice ``voices[i % len(voices)]`` (two
    voices: a two-person conversation on one track)."""
    track = np.zeros(int(duration_s * RATE), np.float32)
    cues: list[Cue] = []
    cursor = start_s
    lines = itertools.cycle(sentences) if repeat else sentences
    for text, voice in zip(lines, itertools.cycle(voices)):
        if repeat and cursor >= duration_s - 1.0:
            break
        speech, rate = synth.tts(text, voice=voice)
        speech = synth.resample(synth.trim_silence(speech), rate, RATE)
        a = int(cursor * RATE)
        piece = speech[: max(track.size - a, 0)]
        track[a : a + piece.size] = piece
        end = cursor + piece.size / RATE
        cues.append(Cue(round(cursor, 3), round(end, 3), text))
        cursor = end + gap_s
    return track, cues


def spoken_clip(
    path: str | Path,
    sentences: Sequence[str],
    *,
    duration_s: float,
    gap_s: float = 0.5,
    repeat: bool = False,
    size: tuple[int, int] = (640, 360),
    fps: float = 25.0,
    captions: bool = True,
    keyframe_s: float | None = None,
    voices: Sequence[str] = ("en-us",),
) -> Path:
    """An mp4 at ``path``: the astronaut portrait as a talking head, speaking
    ``sentences`` (``spoken_track``); with ``captions`` a WebVTT sidecar of them;
    ``keyframe_s``: a keyframe at least this often (HLS cuts segments at keyframes);
    ``voices``: as ``spoken_track``."""
    from skimage import data as skdata

    path = Path(path)
    track, cues = spoken_track(
        sentences, duration_s=duration_s, gap_s=gap_s, repeat=repeat, voices=voices
    )
    frames = synth.talking_head_frames(
        skdata.astronaut(), int(duration_s * fps), size=size, fps=fps
    )
    options = None
    if keyframe_s is not None:
        options = {"g": str(max(1, round(keyframe_s * fps))), "threads": "1"}
    synth.write_media(
        path, frames=frames, fps=fps, audio=track, sample_rate=RATE, video_options=options
    )
    if captions:
        synth.write_vtt(path.with_suffix(".vtt"), cues)
    return path


#: The astronaut portrait cropped around her face, and her mouth in that crop (x, y,
#: half width), as fractions of the crop's side.
_FACE_CROP = (120, 20, 210)  # x, y, side in the 512x512 image
_MOUTH = (0.486, 0.59, 0.07)


def two_person_clip(
    path: str | Path,
    sentences: Sequence[str],
    *,
    duration_s: float,
    gap_s: float = 0.9,
    voices: Sequence[str] = ("en-us", "en-us+f3"),
    fps: float = 10.0,
    tile: int = 300,
    animate: bool = True,
) -> tuple[Path, list[Cue]]:
    """An mp4 of two people side by side (two tiles of the astronaut portrait, as on a
    video call) taking turns: sentence ``i`` is spoken by ``voices[i % 2]`` while the
    mouth of tile ``i % 2`` (0: left) opens and closes; the other mouth stays shut
    (``animate=False``: both stay shut). No captions. Returns the path and the cues."""
    import cv2
    from skimage import data as skdata

    path = Path(path)
    track, cues = spoken_track(sentences, duration_s=duration_s, gap_s=gap_s, voices=voices)
    x, y, side = _FACE_CROP
    face = cv2.resize(skdata.astronaut()[y : y + side, x : x + side], (tile, tile))
    cx, cy, half_w = (round(f * tile) for f in _MOUTH)
    max_open = max(2, round(0.035 * tile))

    def frames():  # noqa: ANN202
        for i in range(int(duration_s * fps)):
            t = i / fps
            talker = next((k % 2 for k, c in enumerate(cues) if c.start_s <= t < c.end_s), None)
            out = np.empty((tile, 2 * tile, 3), np.uint8)
            for who in (0, 1):
                img = face.copy()
                phase = 0.5 + 0.5 * np.sin(2 * np.pi * 3.3 * t + who)
                opening = max_open * phase if (animate and talker == who) else 1
                axes = (half_w, max(1, round(opening)))
                cv2.ellipse(img, (cx, cy), axes, 0, 0, 360, (70, 25, 35), -1)
                out[:, who * tile : (who + 1) * tile] = img
            yield out

    synth.write_media(path, frames=frames(), fps=fps, audio=track, sample_rate=RATE)
    return path, cues
