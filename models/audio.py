"""Audio as every model reads it: 16 kHz mono float32, decoded with PyAV.

``read_audio(path)`` decodes any container and codec FFmpeg knows (wav, flac, mp3, ogg,
m4a, the audio track of a video), resamples with libswresample to 16 kHz planar float (the
pipeline's decoder, ``transforms/media/decoding.py``, does the same per chunk) and
averages the channels. Training and evaluation read their clips with it, so every format
``sentistream run`` accepts also trains and evaluates. The only audio reader in ``models``.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

SAMPLE_RATE = 16_000  # Hz: Whisper's rate, the pipeline's and every audio model's


def read_audio(path: str | Path) -> np.ndarray:
    """(samples,) float32 mono at :data:`SAMPLE_RATE` from the first audio stream of ``path``.

    Raises ValueError naming the file when it is missing, cannot be decoded or has no
    audio samples.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"audio file {path} does not exist")
    parts: list[np.ndarray] = []
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.audio:
                raise ValueError(f"audio file {path} has no audio stream")
            stream = container.streams.audio[0]
            resampler: av.AudioResampler | None = None
            for frame in container.decode(stream):
                resampler = resampler or av.AudioResampler("fltp", frame.layout, SAMPLE_RATE)
                parts += [out.to_ndarray() for out in resampler.resample(frame)]
            if resampler is not None:
                parts += [out.to_ndarray() for out in resampler.resample(None)]
    except (av.FFmpegError, UnicodeDecodeError) as err:
        raise ValueError(f"audio file {path} cannot be decoded: {err}") from err
    if not parts or sum(p.shape[1] for p in parts) == 0:
        raise ValueError(f"audio file {path} holds no audio samples")
    planar = np.concatenate(parts, axis=1).astype(np.float32, copy=False)
    return np.ascontiguousarray(planar.mean(axis=0), dtype=np.float32)
