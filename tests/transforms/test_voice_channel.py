"""Channel-normalised voice scoring: state carried per (video, channel), in time order."""

from __future__ import annotations

import numpy as np
import pytest

from sentistream.transforms.voice import ChannelMemory

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clips():
    from sentistream.pipelines.demo.synth import resample, tts

    texts = [
        "I am so glad you called.",
        "This is not acceptable.",
        "Please hold the line.",
        "Thank you very much.",
        "Why does this keep happening?",
    ]
    return [resample(*tts(t), 16000) for t in texts]


@pytest.fixture(scope="module")
def model():
    from sentistream.models.bundle import DEFAULT_BUNDLES
    from sentistream.models.voice.model import VoiceEmotionModel

    return VoiceEmotionModel.load(DEFAULT_BUNDLES["voice"], threads=1)


def test_batches_carry_each_channels_state_like_one_sequence(model, clips):
    expected, _ = model.predict_channel(clips, None)
    other, _ = model.predict_channel(clips[::-1], None)
    memory = ChannelMemory(model)
    a, b = ("call", 0), ("call", 1)
    # Two channels interleaved, split over two batches.
    first = memory.predict([(a, clips[0]), (b, clips[4]), (a, clips[1]), (b, clips[3])])
    second = memory.predict(
        [(a, clips[2]), (b, clips[2]), (a, clips[3]), (a, clips[4]), (b, clips[1]), (b, clips[0])]
    )
    got_a = [first[0], first[2], second[0], second[2], second[3]]
    got_b = [first[1], first[3], second[1], second[4], second[5]]
    for got, want in ((got_a, expected), (got_b, other)):
        np.testing.assert_allclose([p.valence for p in got], [p.valence for p in want], atol=1e-5)


def test_memory_is_bounded(model, clips):
    memory = ChannelMemory(model, max_channels=2)
    for i in range(5):
        memory.predict([((f"v{i}", 0), clips[0])])
    assert len(memory._stats) == 2
