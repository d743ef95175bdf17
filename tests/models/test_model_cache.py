"""The process's one copy of each model (``models/cache.py``)."""

from __future__ import annotations

import threading

import pytest

from sentistream.models.cache import clear_models, model_loads, shared_model


def test_a_model_loads_once_per_key_and_process():
    made = []

    def load():
        made.append(object())
        return made[-1]

    first = shared_model(("cache-test", "a"), load)
    assert shared_model(("cache-test", "a"), load) is first
    other = shared_model(("cache-test", "b"), load)
    assert other is not first and len(made) == 2
    counts = model_loads()
    assert counts["cache-test/a"] == {"loads": 1, "asked": 2}
    assert counts["cache-test/b"] == {"loads": 1, "asked": 1}
    clear_models("cache-test")
    assert shared_model(("cache-test", "a"), load) is not first
    assert model_loads()["cache-test/a"] == {"loads": 2, "asked": 3}
    clear_models("cache-test")


def test_a_failed_load_is_not_cached():
    calls = []

    def load():
        calls.append(1)
        if len(calls) == 1:
            raise OSError("weights unreadable")
        return "model"

    with pytest.raises(OSError, match="unreadable"):
        shared_model(("cache-fail",), load)
    assert shared_model(("cache-fail",), load) == "model"
    assert model_loads()["cache-fail"]["loads"] == 1
    clear_models("cache-fail")


def test_threads_asking_at_once_share_one_load():
    started = threading.Barrier(4)
    made = []

    def load():
        made.append(object())
        return made[-1]

    got = []

    def ask():
        started.wait()
        got.append(shared_model(("cache-threads",), load))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and all(g is made[0] for g in got)
    clear_models("cache-threads")


def test_the_model_steps_share_their_models_between_bundles():
    """A step's DoFn set up again (a new bundle on Dask) gets the loaded models back:
    Beam's own sharing keeps only the last one acquired alive."""
    from sentistream.transforms.config import PipelineConfig
    from sentistream.transforms.face import FaceHandler
    from sentistream.transforms.text import TextHandler
    from sentistream.transforms.voice import VoiceHandler

    config = PipelineConfig()
    for make in (
        lambda: FaceHandler(config.face),
        lambda: TextHandler(config.text),
        lambda: VoiceHandler(config.voice),
    ):
        a, b = make().load_model(), make().load_model()
        assert getattr(a, "model", a) is getattr(b, "model", b)  # voice: ChannelMemory(model)
