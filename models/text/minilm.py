"""all-MiniLM-L6-v2 for inference in plain torch: the package's weights and tokenizer,
without sentence-transformers or transformers.

Importing sentence-transformers takes about 4 s on a 2-core worker (it pulls in
scikit-learn, SciPy and transformers' model registry), which was most of a cold
``sentistream run``'s start-up; the model itself is a 6-layer BERT. This module builds
that BERT from the package's ``config.json``, loads ``model.safetensors`` into it with
``strict=True`` (the parameter names are BERT's, so a fine-tuned ``BertLayer`` state
loads unchanged), tokenises with the package's ``tokenizer.json`` (the Rust
``tokenizers`` library) and pools as the package's pipeline says (mean over tokens,
then L2 normalisation). ``tests/models/test_text_encoder.py`` checks it against
sentence-transformers' ``encode`` on real sentences.

Training (``models/training/text*.py``) still uses sentence-transformers: it needs its
tokenizer API and transformers' layers for the cached token states.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

MAX_SEQ_LENGTH = 256  # the package's sentence_bert_config.json
UNUSED_KEYS = ("pooler.", "embeddings.position_ids")  # BertModel's pooler: not in the pipeline


class BertShape(NamedTuple):
    """The sizes of a BERT, from a Hugging Face ``config.json``."""

    hidden: int
    heads: int
    intermediate: int
    layers: int
    vocab: int
    positions: int
    token_types: int
    eps: float

    @classmethod
    def from_config(cls, path: Path) -> BertShape:
        c = json.loads(path.read_text())
        if c.get("model_type") != "bert" or c.get("hidden_act") != "gelu":
            raise ValueError(f"{path}: expected a BERT with gelu activations")
        if c.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: only absolute position embeddings are supported")
        return cls(
            hidden=c["hidden_size"],
            heads=c["num_attention_heads"],
            intermediate=c["intermediate_size"],
            layers=c["num_hidden_layers"],
            vocab=c["vocab_size"],
            positions=c["max_position_embeddings"],
            token_types=c["type_vocab_size"],
            eps=c["layer_norm_eps"],
        )


# Module and parameter names follow transformers' BertModel, so its state dicts load strictly.


class _SelfAttention(nn.Module):
    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.heads = s.heads
        self.query = nn.Linear(s.hidden, s.hidden)
        self.key = nn.Linear(s.hidden, s.hidden)
        self.value = nn.Linear(s.hidden, s.hidden)

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        n, t, d = h.shape

        def split(x: torch.Tensor) -> torch.Tensor:  # (N, T, D) -> (N, heads, T, D/heads)
            return x.view(n, t, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = split(self.query(h)), split(self.key(h)), split(self.value(h))
        scale = 1 / math.sqrt(d // self.heads)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=scale)
        return out.transpose(1, 2).reshape(n, t, d)


class _DenseNorm(nn.Module):
    """dense -> dropout (none at inference) -> LayerNorm(x + residual)."""

    def __init__(self, d_in: int, d_out: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        self.LayerNorm = nn.LayerNorm(d_out, eps=eps)  # noqa: N815 (BERT's name)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.self = _SelfAttention(s)
        self.output = _DenseNorm(s.hidden, s.hidden, s.eps)

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(h, keep), h)


class _Intermediate(nn.Module):
    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.dense = nn.Linear(s.hidden, s.intermediate)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(h))  # exact (erf) GELU, BERT's "gelu"


class BertLayer(nn.Module):
    """One transformer block: ``forward(h (N, T, D), keep (N, 1, 1, T) bool) -> (N, T, D)``."""

    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.attention = _Attention(s)
        self.intermediate = _Intermediate(s)
        self.output = _DenseNorm(s.intermediate, s.hidden, s.eps)

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        a = self.attention(h, keep)
        return self.output(self.intermediate(a), a)


class _Embeddings(nn.Module):
    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(s.vocab, s.hidden, padding_idx=0)
        self.position_embeddings = nn.Embedding(s.positions, s.hidden)
        self.token_type_embeddings = nn.Embedding(s.token_types, s.hidden)
        self.LayerNorm = nn.LayerNorm(s.hidden, eps=s.eps)  # noqa: N815 (BERT's name)

    def forward(self, ids: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = (
            self.word_embeddings(ids)
            + self.token_type_embeddings(types)
            + self.position_embeddings(positions)[None]
        )
        return self.LayerNorm(x)


class _Encoder(nn.Module):
    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(s) for _ in range(s.layers))


class Bert(nn.Module):
    """BERT without its pooler: ``forward(ids, types, mask) -> (N, T, D)`` token states."""

    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.shape = s
        self.embeddings = _Embeddings(s)
        self.encoder = _Encoder(s)

    def forward(self, ids: torch.Tensor, types: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.bool()[:, None, None, :]
        h = self.embeddings(ids, types)
        for layer in self.encoder.layer:
            h = layer(h, keep)
        return h


def load_bert(folder: Path, device: str = "cpu") -> Bert:
    """The BERT of a Hugging Face model folder, weights loaded with ``strict=True``."""
    from safetensors.torch import load_file

    model = Bert(BertShape.from_config(folder / "config.json"))
    state = load_file(str(folder / "model.safetensors"))
    state = {k: v for k, v in state.items() if not k.startswith(UNUSED_KEYS)}
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


class MiniLMEncoder:
    """N texts -> (N, 384) float32 mean-pooled, L2-normalised sentence embeddings.

    ``layers`` (index -> ``BertLayer`` state dict) replaces blocks of the packaged model
    (a bundle's fine-tuned top layers), each loaded with ``strict=True``.
    """

    def __init__(
        self,
        folder: Path,
        layers: Mapping[int, Mapping[str, torch.Tensor]] | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 64,
    ) -> None:
        from tokenizers import Tokenizer

        self.model = load_bert(folder, device)
        for index, sd in (layers or {}).items():
            self.model.encoder.layer[index].load_state_dict(sd, strict=True)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the batch's longest
        self.device = device
        self.batch_size = batch_size

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.model.shape.hidden), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths per batch
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start : start + self.batch_size]
                enc = self.tokenizer.encode_batch([texts[i] for i in idx])

                def tensor(field: str, enc: list = enc) -> torch.Tensor:
                    return torch.tensor([getattr(e, field) for e in enc], device=self.device)

                mask = tensor("attention_mask")
                h = self.model(tensor("ids"), tensor("type_ids"), mask)
                out[idx] = mean_pool(h, mask, normalize=True).float().cpu().numpy()
        return out


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor, *, normalize: bool) -> torch.Tensor:
    """Masked mean over tokens: (N, T, D) states, (N, T) 0/1 mask -> (N, D).

    ``normalize`` divides by the L2 norm, as sentence-transformers' ``Normalize`` does.
    """
    m = mask.to(hidden.dtype).unsqueeze(-1)
    pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
    return F.normalize(pooled, p=2, dim=1) if normalize else pooled
