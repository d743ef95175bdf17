"""Shared fixtures. Media is generated at test time; real labelled data comes from
``../shared/data`` (or ``$SENTISTREAM_DATA``) and tests that need it skip where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    return Path(os.environ.get("SENTISTREAM_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the labelled corpora; skips the test where they are not on this machine."""
    root = shared_data_dir()
    if not (root / "README.md").is_file():
        pytest.skip(f"labelled data not found at {root} (set SENTISTREAM_DATA)")
    return root


AGENT_LINE = "Thank you for calling, my name is Sam, how can I help you today?"
CUSTOMER_LINE = "My internet has been down for three days and I am really upset about it."
CALL_SECONDS = 9.0
CUSTOMER_START_S = 3.0  # while the agent is still talking: overlapping speech


@pytest.fixture(scope="session")
def stereo_call(tmp_path_factory):
    """A generated stereo call recording (agent left, customer right, the customer
    starting while the agent talks) with a talking-head video: (path, samples), samples
    the (2, n) float32 audio at 16 kHz as written."""
    import numpy as np
    from skimage import data as skdata

    from sentistream.pipelines.demo.synth import (
        resample,
        talking_head_frames,
        trim_silence,
        tts,
        write_media,
    )

    def voice(text: str) -> np.ndarray:
        audio, rate = tts(text)
        return resample(trim_silence(audio), rate, 16000)

    fps = 10.0
    stereo = np.zeros((2, int(CALL_SECONDS * 16000)), np.float32)
    agent, customer = voice(AGENT_LINE), voice(CUSTOMER_LINE)
    stereo[0, 8000 : 8000 + agent.size] = agent[: stereo.shape[1] - 8000]
    start = int(16000 * CUSTOMER_START_S)
    stereo[1, start : start + customer.size] = 0.5 * customer[: stereo.shape[1] - start]
    frames = talking_head_frames(skdata.astronaut(), int(CALL_SECONDS * fps), fps=fps)
    path = tmp_path_factory.mktemp("call") / "call.mp4"
    return write_media(path, frames=frames, fps=fps, audio=stereo), stereo


CONVERSATION = (
    "Thank you for calling, my name is Sam, how can I help you today?",
    "Hi, my internet has been down for three days and I am really upset about it.",
    "I am sorry to hear that, let me look at your line right away.",
    "Thank you, I work from home and I cannot do anything without it.",
    "I can see a fault on the line, a technician can come tomorrow morning.",
    "That would be great, tomorrow morning works for me.",
)
CONVERSATION_VOICES = ("en-us", "en-us+f3")  # espeak-ng: a man's voice and a woman's


@pytest.fixture(scope="session")
def mono_conversation(tmp_path_factory):
    """A generated mono talking-head video of two people taking turns (the lines of
    ``CONVERSATION``, alternately in the two ``CONVERSATION_VOICES``), without captions:
    (path, cues), cue ``i`` spoken by voice ``i % 2``."""
    from sentistream.pipelines.demo.clips import spoken_clip, spoken_track

    duration = 30.0
    path = tmp_path_factory.mktemp("conversation") / "conversation.mp4"
    _, cues = spoken_track(CONVERSATION, duration_s=duration, gap_s=0.9, voices=CONVERSATION_VOICES)
    spoken_clip(
        path,
        CONVERSATION,
        duration_s=duration,
        gap_s=0.9,
        fps=10.0,
        size=(320, 240),
        captions=False,
        voices=CONVERSATION_VOICES,
    )
    return path, cues


@pytest.fixture(scope="session")
def two_person_calls(tmp_path_factory):
    """Two generated video calls of two people side by side (300 px tiles) taking turns
    on one mono track (``CONVERSATION``): one where the talker's mouth moves, one where
    both mouths stay still. Each is (path, cues), cue ``i`` spoken by tile ``i % 2``."""
    from sentistream.pipelines.demo.clips import two_person_clip

    folder = tmp_path_factory.mktemp("two")
    talking = two_person_clip(folder / "call.mp4", CONVERSATION, duration_s=30.0, tile=300)
    still = two_person_clip(
        folder / "still.mp4", CONVERSATION, duration_s=30.0, tile=300, animate=False
    )
    return talking, still


def pytest_collection_modifyitems(config, items):
    """Skip ``gpu`` tests where torch sees no CUDA device."""
    if not any("gpu" in item.keywords for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
