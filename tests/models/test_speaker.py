"""The speaker encoder (real shipped weights), the clustering, the timeline and DER."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sentistream.models.bundle import load_bundle_meta, load_weights_strict
from sentistream.models.speaker.der import der
from sentistream.models.speaker.diarize import (
    Run,
    Timeline,
    Turn,
    cluster,
    diarize,
    embed_turn,
    turn_windows,
)
from sentistream.models.speaker.encoder import (
    GE2EEncoder,
    load_speaker_encoder,
    mel_frames,
    raise_level,
)

LINES = (
    "Thank you for calling, how can I help you today?",
    "My internet has been down for three days.",
    "I am sorry to hear that, let me check.",
    "That would be great, thank you so much.",
)


@pytest.fixture(scope="module")
def voices():
    """The four lines in two espeak-ng voices (16 kHz)."""
    from sentistream.pipelines.demo.synth import resample, trim_silence, tts

    def say(text: str, voice: str) -> np.ndarray:
        audio, rate = tts(text, voice=voice)
        return resample(trim_silence(audio), rate, 16000)

    return {v: [say(line, v) for line in LINES] for v in ("en-us", "en-us+f3")}


def test_the_shipped_weights_load_strictly_and_a_mismatch_is_refused():
    meta = load_bundle_meta("speaker-ge2e-resemblyzer", expected_kind="speaker")
    assert meta.model_id.startswith("speaker-ge2e-resemblyzer@1+")
    state = torch.load(meta.weights_path, map_location="cpu", weights_only=True)
    assert "similarity_weight" not in state and len(state) == 14
    broken = dict(state)
    broken.pop("linear.bias")
    with pytest.raises(ValueError, match="speaker-ge2e-resemblyzer"):
        load_weights_strict(GE2EEncoder(), meta, "do not fit", state=broken)


def test_mel_frames_follow_the_10_ms_grid_and_quiet_audio_is_raised():
    assert mel_frames(np.zeros(16000, np.float32)).shape == (101, 40)
    quiet = np.full(1600, 1e-3, np.float32)
    assert 20 * np.log10(np.sqrt(np.mean(raise_level(quiet) ** 2))) == pytest.approx(-30, abs=0.01)
    loud = np.full(1600, 0.5, np.float32)
    assert raise_level(loud) is loud  # never lowered


def test_embeddings_tell_two_voices_apart(voices):
    encoder = load_speaker_encoder()
    a, b = (encoder.embed(voices[v]) for v in ("en-us", "en-us+f3"))
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    same = np.concatenate([(a @ a.T)[np.triu_indices(4, 1)], (b @ b.T)[np.triu_indices(4, 1)]])
    assert same.min() > (a @ b.T).max()
    assert np.array_equal(encoder.embed(voices["en-us"]), a)  # deterministic


def test_diarize_finds_the_two_voices_of_a_conversation_in_order(voices):
    encoder = load_speaker_encoder()
    turns, t = [], 0.5
    for i in range(8):
        audio = voices["en-us" if i % 2 == 0 else "en-us+f3"][i // 2]  # 4 lines each
        turns.append(Turn(t, t + audio.size / 16000, audio))
        t += audio.size / 16000 + 0.6
    timeline = diarize(turns, encoder.embed)
    assert timeline.speakers == 2
    for i, turn in enumerate(turns):
        (piece,) = timeline.split(turn.start_s, turn.end_s, 1.0)
        assert piece.speaker == i % 2  # spk_0 speaks first
    one = diarize(turns[::2], encoder.embed)
    assert one.speakers == 1


def _groups(sizes: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(16)[: len(sizes)] * 3 + 0.5
    x = np.concatenate(
        [c + rng.normal(0, 0.3, (n, 16)) for c, n in zip(centres, sizes, strict=False)]
    )
    truth = np.repeat(np.arange(len(sizes)), sizes)
    return x / np.linalg.norm(x, axis=1, keepdims=True), truth


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return len({(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)}) == len(
        set(b.tolist())
    )


@pytest.mark.parametrize("sizes", [[30, 20], [25, 25, 15], [20, 20, 20, 20]])
def test_cluster_estimates_well_separated_groups(sizes):
    x, truth = _groups(sizes)
    labels = cluster(x)
    assert len(set(labels.tolist())) == len(sizes)
    assert _same_partition(labels, truth)
    assert np.array_equal(cluster(x), labels)  # deterministic


def test_cluster_with_a_known_count_and_one_group():
    x, truth = _groups([30, 20, 10])
    assert len(set(cluster(x, speakers=2).tolist())) == 2
    assert _same_partition(cluster(x, speakers=3), truth)
    one, _ = _groups([40])
    assert set(cluster(one).tolist()) == {0}
    assert set(cluster(x[:4]).tolist()) == {0}  # too few windows to split


def test_turn_windows_cover_the_turn():
    turn = Turn(10.0, 14.0, np.zeros(64000, np.float32))
    ws = turn_windows(turn, 0)
    assert ws[0].own_start_s == 10.0 and ws[-1].own_end_s == 14.0
    assert all(
        a.own_end_s == pytest.approx(b.own_start_s) for a, b in zip(ws, ws[1:], strict=False)
    )
    assert ws[-1].end_s == 14.0 and all(w.end_s - w.start_s == pytest.approx(1.5) for w in ws)
    assert turn_windows(Turn(0.0, 0.3, np.zeros(4800, np.float32)), 0) == []
    (short,) = turn_windows(Turn(5.0, 6.2, np.zeros(19200, np.float32)), 0)
    assert (short.start_s, short.end_s) == (5.0, 6.2)  # a short turn is one whole window


def test_damaged_samples_are_not_embedded():
    audio = np.ones(64000, np.float32) * 0.1
    audio[40000] = np.nan
    windows, emb = embed_turn(Turn(0.0, 4.0, audio), 0, lambda p: np.ones((len(p), 4)))
    assert windows and all(not (w.start_s <= 2.5 < w.end_s) for w in windows)
    assert len(emb) == len(windows)


def test_long_recordings_cluster_a_sample_and_label_every_window(monkeypatch):
    from sentistream.models.speaker import diarize as d

    monkeypatch.setattr(d, "MAX_WINDOWS", 40)
    x, truth = _groups([70, 50])
    ws = [d.Window(0, i, i + 1, i, i + 1) for i in range(len(x))]
    timeline = d.timeline_of(ws, x)
    assert timeline.speakers == 2
    labels = np.array([timeline.speaker_at(i + 0.5) for i in range(len(x))])
    assert _same_partition(labels, truth)


def test_timeline_split_cuts_at_speaker_changes_and_merges_short_pieces():
    tl = Timeline((Run(0, 3, 0), Run(3, 3.5, 1), Run(3.5, 6, 0), Run(7, 9, 1)), 2)
    assert tl.split(0, 6, 1.0) == [Run(0, 6, 0)]  # the 0.5 s piece is folded in
    assert tl.split(0, 6, 0.4) == [Run(0, 3, 0), Run(3, 3.5, 1), Run(3.5, 6, 0)]
    assert tl.split(5, 9, 1.0) == [Run(5, 7, 0), Run(7, 9, 1)]
    assert tl.split(9.5, 10, 1.0) == [Run(9.5, 10, 1)]  # no run: the nearest one's
    assert Timeline((), 0).split(1, 2, 1.0) == [Run(1, 2, 0)]


def test_der_counts_missed_false_alarm_and_confusion_under_the_best_mapping():
    ref = [(0.0, 10.0, "a"), (10.0, 20.0, "b")]
    assert der(ref, [(0.0, 10.0, "x"), (10.0, 20.0, "y")])["der"] == 0.0
    assert der(ref, [(0.0, 10.0, "y"), (10.0, 20.0, "x")])["der"] == 0.0  # names do not matter
    one = der(ref, [(0.0, 20.0, "x")], collar=0.0)
    assert one["confusion"] == pytest.approx(0.5, abs=0.002) and one["missed"] == 0.0
    half = der(ref, [(0.0, 10.0, "x")], collar=0.0)
    assert half["missed"] == pytest.approx(0.5, abs=0.002) and half["confusion"] == 0.0
    extra = der(ref, [(0.0, 10.0, "x"), (10.0, 20.0, "y"), (0.0, 5.0, "z")], collar=0.0)
    assert extra["false_alarm"] == pytest.approx(0.25, abs=0.002)
    # the collar forgives a boundary placed 0.2 s late
    late = der(ref, [(0.0, 10.2, "x"), (10.2, 20.0, "y")])
    assert (
        late["der"] == 0.0 and der(ref, [(0.0, 10.2, "x"), (10.2, 20.0, "y")], collar=0)["der"] > 0
    )
