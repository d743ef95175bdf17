"""Partially fine-tuned text model: strict layer loading, the cached training path, the
shipped ``text-minilm-ft`` bundle's behaviour."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sentistream.models.bundle import resolve_bundle
from sentistream.models.labels import VALENCE_LABELS as LABELS
from sentistream.models.text.encoder import (
    LAYER_PREFIX,
    TokenStates,
    finetuned_state,
    length_batches,
    mean_pool,
    minilm_config,
    pad_batch,
    split_finetuned_state,
    subset,
)
from sentistream.models.text.model import TextSentimentModel
from sentistream.models.training.text_finetune import paired_delta

BUNDLE = "text-minilm-ft"
NEGATIVE = "This is terrible, I hate it and I want a refund."
POSITIVE = "This is wonderful, I love it, thank you so much!"
NEUTRAL = "The meeting is scheduled for Tuesday at 3 pm."


def copy_bundle(tmp_path: Path) -> tuple[dict, Path]:
    """The shipped bundle's json (as a dict) and weights, copied into tmp_path."""
    src = resolve_bundle(BUNDLE)
    meta = json.loads(src.read_text())
    shutil.copy(src.parent / meta["weights"], tmp_path / meta["weights"])
    return meta, tmp_path / meta["weights"]


@pytest.fixture(scope="module")
def model() -> TextSentimentModel:
    torch.set_num_threads(1)
    return TextSentimentModel.load(BUNDLE)


# ---------------------------------------------------------------- fast


def test_mean_pool_ignores_padding_and_normalises() -> None:
    hidden = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.allclose(mean_pool(hidden, mask, normalize=False), torch.tensor([[2.0, 0.0]]))
    assert torch.allclose(mean_pool(hidden, mask, normalize=True), torch.tensor([[1.0, 0.0]]))


def test_token_state_batches() -> None:
    lengths = np.array([3, 1, 2, 5])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    tokens = TokenStates(torch.arange(11.0).repeat_interleave(2).view(11, 2), offsets, 4)
    hidden, mask = pad_batch(tokens, np.array([1, 3]))
    assert hidden.shape == (2, 5, 2) and mask.tolist() == [[1, 0, 0, 0, 0], [1] * 5]
    assert hidden[0, 0, 0] == 3.0 and hidden[0, 1:].abs().sum() == 0
    sub = subset(tokens, np.array([3, 0]))
    assert sub.lengths.tolist() == [5, 3] and torch.equal(sub.states[5:], tokens.states[:3])
    batches = length_batches(np.arange(10) % 4, 3, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))


def test_paired_delta_of_identical_predictions_is_zero() -> None:
    y = np.array([0, 1, 2, 1, 0, 2])
    out = paired_delta(y, y, y, seed=0, n_boot=50)
    assert out["delta"] == 0.0 and out["ci95_low"] == 0.0 and out["ci95_high"] == 0.0


def test_split_finetuned_state_is_strict() -> None:
    from transformers.models.bert.modeling_bert import BertLayer

    layer = BertLayer(minilm_config()).state_dict()
    head = {"net.weight": torch.zeros(3, 388)}
    state = finetuned_state(head, {5: layer})
    got_head, got_layers = split_finetuned_state("x", {"finetuned_layers": [5]}, state)
    assert set(got_head) == {"net.weight"} and list(got_layers) == [5]
    with pytest.raises(ValueError, match="keys outside the head and the fine-tuned layers"):
        split_finetuned_state("x", {"finetuned_layers": [4]}, state)
    short = {k: v for k, v in state.items() if not k.endswith("output.dense.bias")}
    with pytest.raises(ValueError, match="layer 5 does not match a BertLayer"):
        split_finetuned_state("x", {"finetuned_layers": [5]}, short)
    with pytest.raises(ValueError, match="finetuned_layers"):
        split_finetuned_state("x", {"finetuned_layers": [6]}, state)


def test_shipped_bundle_is_small_and_loads_strictly(fake_encoder) -> None:
    path = resolve_bundle(BUNDLE)
    meta = json.loads(path.read_text())
    assert (path.parent / meta["weights"]).stat().st_size < 15e6
    assert meta["params"]["finetuned_layers"]
    m = TextSentimentModel.load(BUNDLE, encoder=fake_encoder)
    assert m.model_id.startswith("text-minilm-ft@") and m.labels == LABELS
    assert m.predict_proba([NEUTRAL]).shape == (1, 3)


def test_mismatched_layer_weights_fail_clearly(fake_encoder, tmp_path: Path) -> None:
    meta, weights = copy_bundle(tmp_path)
    state = torch.load(weights, weights_only=True)
    index = meta["params"]["finetuned_layers"][-1]
    key = f"{LAYER_PREFIX}{index}.attention.self.query.weight"
    state[key] = torch.zeros(10, 384)  # wrong shape
    torch.save(state, weights)
    (tmp_path / "bad.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=rf"layer {index} does not match a BertLayer"):
        TextSentimentModel.load(str(tmp_path / "bad.json"), encoder=fake_encoder)


def test_layer_index_mismatch_fails_clearly(fake_encoder, tmp_path: Path) -> None:
    meta, _ = copy_bundle(tmp_path)
    meta["params"]["finetuned_layers"] = [0]  # the weights hold other layers
    (tmp_path / "bad.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="keys outside the head and the fine-tuned layers"):
        TextSentimentModel.load(str(tmp_path / "bad.json"), encoder=fake_encoder)


# ---------------------------------------------------------------- real model


@pytest.mark.slow
def test_finetuned_layers_are_in_the_encoder(model: TextSentimentModel) -> None:
    from sentistream.models.text.model import load_minilm_encoder

    assert model.encoder is not None
    a, b = model.encoder([NEUTRAL]), load_minilm_encoder()([NEUTRAL])
    assert a.shape == b.shape == (1, 384)
    assert np.abs(a - b).max() > 1e-3  # the fine-tuned layers changed the embedding
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.slow
def test_shipped_model_polarity(model: TextSentimentModel) -> None:
    neg, pos, neu = model.predict([NEGATIVE, POSITIVE, NEUTRAL])
    assert neg.valence < -0.4 and max(neg.probs, key=neg.probs.__getitem__) == "negative"
    assert pos.valence > 0.4 and max(pos.probs, key=pos.probs.__getitem__) == "positive"
    assert abs(neu.valence) < 0.3 and max(neu.probs, key=neu.probs.__getitem__) == "neutral"
    for p in (neg, pos, neu):
        assert -1.0 <= p.valence <= 1.0 and 0.0 <= p.confidence <= 1.0


@pytest.mark.slow
def test_batch_equals_items(model: TextSentimentModel) -> None:
    texts = [NEGATIVE, POSITIVE, NEUTRAL, "Oh my God!", "Whatever, fine."]
    batched = model.predict_proba(texts)
    singles = np.concatenate([model.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(batched, singles, atol=1e-5)


@pytest.mark.slow
def test_empty_text_raises(model: TextSentimentModel) -> None:
    with pytest.raises(ValueError, match=r"texts\[1\] is empty"):
        model.predict(["fine", "  "])


@pytest.mark.slow
def test_plain_torch_minilm_equals_sentence_transformers(model: TextSentimentModel) -> None:
    """The inference encoder (models/text/minilm.py) against sentence-transformers' own
    pipeline with the same fine-tuned layers: long (truncated), accented, short texts."""
    from sentistream.models.bundle import load_bundle_meta, read_weights
    from sentistream.models.text.encoder import load_sentence_transformer

    texts = [NEGATIVE, POSITIVE, NEUTRAL, "Oh my God!", "word " * 400, "Café naïve — “quoted”"]
    meta = load_bundle_meta(BUNDLE)
    _, layers = split_finetuned_state(meta.name, meta.params, read_weights(meta))
    st = load_sentence_transformer()
    for index, sd in layers.items():
        st[0].auto_model.encoder.layer[index].load_state_dict(sd, strict=True)
    expected = st.encode(texts, convert_to_numpy=True, show_progress_bar=False)
    assert model.encoder is not None
    np.testing.assert_allclose(model.encoder(texts), expected, atol=1e-5)


@pytest.mark.slow
def test_text_model_loads_without_transformers_imports() -> None:
    """Start-up: the text step must not import sentence-transformers or transformers
    (about 4-5 s on a 2-core worker)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from sentistream.models.text.model import TextSentimentModel\n"
        "TextSentimentModel.load('text-minilm-ft').predict(['fine, thanks'])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'transformers', 'sentence_transformers', 'sklearn'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
