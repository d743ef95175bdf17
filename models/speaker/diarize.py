"""Who spoke when in one audio track: speech turns -> windows -> speaker embeddings ->
clusters -> a ``Timeline`` of speaker runs (pure numpy / scipy; the encoder is passed in).

1. Each speech turn (from the segmenter's voice activity) is cut into windows of
   ``WINDOW_S`` every ``HOP_S`` (a turn shorter than a window is one window), each
   embedded by the GE2E encoder (``encoder.py``).
2. The windows are clustered spectrally (Wang et al. 2018; Park et al. 2019): a
   p-nearest-neighbour affinity of their cosine similarities, p auto-tuned (NME-SC), the
   Laplacian's first eigenvectors, k-means on them. With ``speakers`` known, k is that.
   Otherwise a recording whose two k-means halves have mean embeddings at least
   ``threshold`` cosine-similar is one speaker; else k (2 .. ``max_speakers``) is the one
   with the best silhouette (cosine, in the embedding space) among those whose clusters
   are pairwise less similar than ``threshold``. The threshold and the
   method were chosen on conversations of development speakers only (``sentistream
   evaluate diarization``; docs/diarization.md).
3. Within a turn, a window whose label differs from both neighbours, which agree, takes
   theirs; each window owns the time around its centre, so a turn splits where the
   speaker changes. Speakers are numbered by first appearance: ``spk_0`` speaks first.

A long recording's windows are spaced out (``hop_for`` its duration), and at most
``MAX_WINDOWS`` evenly spaced ones are clustered (the matrices are quadratic in them):
the others take the label of the nearest cluster mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sentistream.models.audio import SAMPLE_RATE

WINDOW_S = 1.5
HOP_S = 0.75
MIN_WINDOW_S = 0.4  # a turn shorter than this is not embedded (too little voice)
MAX_WINDOWS = 1500
MIN_WINDOWS = 3  # a speaker needs at least this many windows (k <= n / MIN_WINDOWS)
MAX_SPEAKERS = 8
#: Two halves of a recording whose mean embeddings are at least this cosine-similar are
#: one speaker (tuned on development speakers only; see docs/diarization.md).
DEFAULT_THRESHOLD = 0.85
VERSION = "dia-v1"

Embed = Callable[[list[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Turn:
    """A speech turn and its 16 kHz mono samples."""

    start_s: float
    end_s: float
    audio: np.ndarray


@dataclass(frozen=True)
class Run:
    """[start_s, end_s) spoken by ``speaker`` (0, 1, ...: order of first appearance)."""

    start_s: float
    end_s: float
    speaker: int


@dataclass(frozen=True)
class Timeline:
    """A recording's speaker runs, in time order, and how many speakers it has."""

    runs: tuple[Run, ...]
    speakers: int

    def split(self, start_s: float, end_s: float, min_piece_s: float) -> list[Run]:
        """[start_s, end_s) cut where the speaker changes: the runs it overlaps, clipped,
        the time between runs given to the earlier one, pieces under ``min_piece_s``
        merged into a neighbour. A range no run overlaps is the nearest run's speaker."""
        inside = [r for r in self.runs if r.end_s > start_s and r.start_s < end_s]
        if not inside:
            return [Run(start_s, end_s, self.speaker_at((start_s + end_s) / 2))]
        pieces: list[Run] = []
        for i, r in enumerate(inside):
            lo = start_s if i == 0 else r.start_s
            hi = end_s if i == len(inside) - 1 else inside[i + 1].start_s
            if pieces and pieces[-1].speaker == r.speaker:
                pieces[-1] = Run(pieces[-1].start_s, hi, r.speaker)
            else:
                pieces.append(Run(lo, hi, r.speaker))
        return _merge_short(pieces, min_piece_s)

    def speaker_at(self, t: float) -> int:
        """The speaker of the run nearest ``t`` (0 with no runs)."""
        if not self.runs:
            return 0
        return min(self.runs, key=lambda r: max(r.start_s - t, t - r.end_s, 0.0)).speaker


def _merge_short(pieces: list[Run], min_piece_s: float) -> list[Run]:
    """Fold pieces shorter than ``min_piece_s`` into their longer neighbour."""
    pieces = list(pieces)
    while len(pieces) > 1:
        short = [i for i, p in enumerate(pieces) if p.end_s - p.start_s < min_piece_s]
        if not short:
            break
        i = min(short, key=lambda k: pieces[k].end_s - pieces[k].start_s)
        left = pieces[i - 1] if i > 0 else None
        right = pieces[i + 1] if i + 1 < len(pieces) else None
        if right is None or (left is not None and _dur(left) >= _dur(right)):
            pieces[i - 1 : i + 1] = [Run(left.start_s, pieces[i].end_s, left.speaker)]  # type: ignore[union-attr]
        else:
            pieces[i : i + 2] = [Run(pieces[i].start_s, right.end_s, right.speaker)]
        pieces = _join_same(pieces)
    return pieces


def _join_same(pieces: list[Run]) -> list[Run]:
    out: list[Run] = []
    for p in pieces:
        if out and out[-1].speaker == p.speaker:
            out[-1] = Run(out[-1].start_s, p.end_s, p.speaker)
        else:
            out.append(p)
    return out


def _dur(r: Run) -> float:
    return r.end_s - r.start_s


@dataclass(frozen=True)
class Window:
    turn: int
    start_s: float  # window audio
    end_s: float
    own_start_s: float  # the time it speaks for
    own_end_s: float


def turn_windows(turn: Turn, index: int, hop_s: float = HOP_S) -> list[Window]:
    """The embedding windows of one turn (the ``index``-th of its track)."""
    dur = turn.end_s - turn.start_s
    if dur < MIN_WINDOW_S:
        return []
    n = 1 if dur <= WINDOW_S else 1 + math.ceil((dur - WINDOW_S) / hop_s)
    starts = [turn.start_s + max(0.0, min(i * hop_s, dur - WINDOW_S)) for i in range(n)]
    centres = [s + min(WINDOW_S, dur) / 2 for s in starts]
    out = []
    for i, s in enumerate(starts):
        own_lo = turn.start_s if i == 0 else (centres[i - 1] + centres[i]) / 2
        own_hi = turn.end_s if i == n - 1 else (centres[i] + centres[i + 1]) / 2
        out.append(Window(index, s, min(s + WINDOW_S, turn.end_s), own_lo, own_hi))
    return out


def embed_turn(
    turn: Turn, index: int, embed: Embed, hop_s: float = HOP_S
) -> tuple[list[Window], np.ndarray]:
    """The windows of one turn and their (n, D) embeddings."""
    windows = turn_windows(turn, index, hop_s)
    if not windows:
        return [], np.zeros((0, 0), np.float32)
    kept, pieces = [], []
    for w in windows:
        lo = round((w.start_s - turn.start_s) * SAMPLE_RATE)
        piece = turn.audio[lo : lo + round((w.end_s - w.start_s) * SAMPLE_RATE)]
        if np.isfinite(piece).all():  # damaged samples: that window says nothing
            kept.append(w)
            pieces.append(piece)
    if not kept:
        return [], np.zeros((0, 0), np.float32)
    return kept, embed(pieces)


def hop_for(duration_s: float) -> float:
    """The window hop for a track of ``duration_s``: ``HOP_S``, or wider so that at most
    about ``MAX_WINDOWS`` windows are clustered."""
    return max(HOP_S, duration_s / MAX_WINDOWS)


def cluster(
    embeddings: np.ndarray,
    *,
    speakers: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_speakers: int = MAX_SPEAKERS,
) -> np.ndarray:
    """Cluster labels (0..k-1, arbitrary order) of unit-length embeddings (N, D): spectral
    clustering (see the module docstring); ``speakers`` fixes k."""
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(1e-12)
    n = len(x)
    k_max = min(max_speakers, n // MIN_WINDOWS)
    if speakers == 1 or k_max < 2:
        return np.zeros(n, np.int64)
    vectors = _spectral_embedding(x, k_max)
    if speakers is not None:
        k = min(speakers, n)
        return _kmeans(vectors[:, :k], k)
    two = _kmeans(vectors[:, :2], 2)
    if _centroid_similarity(x, two) >= threshold:
        return np.zeros(n, np.int64)  # the two halves are one voice
    best, best_score = two, _silhouette(x, two)
    for k in range(3, k_max + 1):
        labels = _kmeans(vectors[:, :k], k)
        if _centroid_similarity(x, labels) >= threshold:
            continue  # two of its clusters are one voice
        score = _silhouette(x, labels)
        if score > best_score:
            best, best_score = labels, score
    return best


def _spectral_embedding(x: np.ndarray, k_max: int) -> np.ndarray:
    """The first ``k_max + 1`` eigenvectors of the graph Laplacian of the windows' p-nearest
    neighbour affinity, p chosen as in Park et al. 2019 (NME-SC): the p whose Laplacian
    has the largest normalised eigengap relative to p."""
    from scipy.linalg import eigh

    sim = x @ x.T
    n = len(sim)
    order = np.argsort(-sim, axis=1)
    step = max(1, n // 50)
    best: tuple[float, np.ndarray] | None = None
    # fewer than 6 neighbours splits a short recording's graph into specks
    p_lo = min(max(6, n // 50), n - 1)
    for p in range(p_lo, max(p_lo, 3 * n // 10) + 1, step):
        aff = np.zeros_like(sim)
        np.put_along_axis(aff, order[:, :p], 1.0, axis=1)
        aff = (aff + aff.T) / 2
        lap = np.diag(aff.sum(axis=1)) - aff
        values, vectors = eigh(lap, subset_by_index=[0, min(k_max, n - 1)])
        top = float(eigh(lap, eigvals_only=True, subset_by_index=[n - 1, n - 1])[0])
        gap = np.diff(values).max() / max(top, 1e-10)
        ratio = p / max(gap, 1e-10)
        if best is None or ratio < best[0]:
            best = (ratio, vectors)
    assert best is not None
    return best[1]


def _kmeans(v: np.ndarray, k: int, *, inits: int = 10, iters: int = 50) -> np.ndarray:
    """k-means labels of the rows of ``v`` (k-means++ starts from a fixed seed, the best of
    ``inits`` runs): the same input always gives the same labels."""
    rng = np.random.default_rng(0)
    best, best_cost = np.zeros(len(v), np.int64), np.inf
    for _ in range(inits):
        centres = [v[rng.integers(len(v))]]
        for _ in range(1, k):
            d = np.min([((v - c) ** 2).sum(axis=1) for c in centres], axis=0)
            total = d.sum()
            pick = rng.choice(len(v), p=d / total) if total > 0 else rng.integers(len(v))
            centres.append(v[pick])
        c = np.stack(centres)
        for _ in range(iters):
            labels = np.argmin(((v[:, None, :] - c[None]) ** 2).sum(axis=2), axis=1)
            new = np.stack(
                [v[labels == j].mean(axis=0) if (labels == j).any() else c[j] for j in range(k)]
            )
            if np.allclose(new, c):
                break
            c = new
        cost = float(((v - c[labels]) ** 2).sum())
        if cost < best_cost:
            best, best_cost = labels, cost
    return np.unique(best, return_inverse=True)[1].astype(np.int64)


def _centroid_similarity(x: np.ndarray, labels: np.ndarray) -> float:
    """The highest cosine similarity between two clusters' mean embeddings."""
    ks = np.unique(labels)
    if len(ks) < 2:
        return 1.0
    c = np.stack([x[labels == k].mean(axis=0) for k in ks])
    c /= np.linalg.norm(c, axis=1, keepdims=True).clip(1e-12)
    sim = c @ c.T
    np.fill_diagonal(sim, -1.0)
    return float(sim.max())


def _silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of the labelling under cosine distance (-1 .. 1)."""
    ks = np.unique(labels)
    if len(ks) < 2:
        return -1.0
    dist = 1.0 - x @ x.T
    own = np.zeros(len(x))
    other = np.full(len(x), np.inf)
    for k in ks:
        members = labels == k
        mean = dist[:, members].sum(axis=1)
        size = members.sum()
        own = np.where(members, mean / max(size - 1, 1), own)
        other = np.where(members, other, np.minimum(other, mean / size))
    score = (other - own) / np.maximum(np.maximum(own, other), 1e-12)
    index = np.unique(labels, return_inverse=True)[1]
    score[np.bincount(index)[index] == 1] = 0.0  # a one-window cluster scores 0, as sklearn
    return float(score.mean())


def _smooth(windows: Sequence[Window], labels: np.ndarray) -> np.ndarray:
    out = labels.copy()
    for i in range(1, len(windows) - 1):
        same_turn = windows[i - 1].turn == windows[i].turn == windows[i + 1].turn
        if same_turn and out[i - 1] == labels[i + 1] != labels[i]:
            out[i] = labels[i + 1]
    return out


def _cluster_bounded(
    x: np.ndarray, speakers: int | None, threshold: float, max_speakers: int
) -> np.ndarray:
    """``cluster`` on at most ``MAX_WINDOWS`` evenly spaced windows (its matrices are
    quadratic in them); the others take the label of the nearest cluster mean."""
    n = len(x)
    if n <= MAX_WINDOWS:
        return cluster(x, speakers=speakers, threshold=threshold, max_speakers=max_speakers)
    pick = np.linspace(0, n - 1, MAX_WINDOWS).round().astype(int)
    sample = cluster(x[pick], speakers=speakers, threshold=threshold, max_speakers=max_speakers)
    ks = np.unique(sample)
    centres = np.stack([x[pick][sample == k].mean(axis=0) for k in ks])
    labels = ks[np.argmax(x @ centres.T, axis=1)]
    labels[pick] = sample
    return labels


def timeline_of(
    windows: Sequence[Window],
    embeddings: np.ndarray,
    *,
    speakers: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_speakers: int = MAX_SPEAKERS,
) -> Timeline:
    """The speaker timeline from a track's windows (in time order) and their embeddings."""
    if not windows:
        return Timeline((), 0)
    labels = _cluster_bounded(embeddings, speakers, threshold, max_speakers)
    labels = _smooth(windows, labels)
    order: dict[int, int] = {}
    for k in labels.tolist():  # windows are in time order: number by first appearance
        order.setdefault(k, len(order))
    runs: list[Run] = []
    for w, k in zip(windows, labels.tolist(), strict=True):
        spk = order[k]
        if runs and runs[-1].speaker == spk and abs(runs[-1].end_s - w.own_start_s) < 1e-6:
            runs[-1] = Run(runs[-1].start_s, w.own_end_s, spk)
        else:
            runs.append(Run(w.own_start_s, w.own_end_s, spk))
    return Timeline(tuple(runs), len(order))


def diarize(
    turns: Sequence[Turn],
    embed: Embed,
    *,
    speakers: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_speakers: int = MAX_SPEAKERS,
) -> Timeline:
    """The speaker timeline of one track's speech ``turns`` (in time order); ``embed``
    maps audio pieces to unit embeddings (``SpeakerEncoder.embed``)."""
    hop = hop_for(sum(t.end_s - t.start_s for t in turns))
    windows: list[Window] = []
    parts = []
    for i, turn in enumerate(turns):
        ws, emb = embed_turn(turn, i, embed, hop)
        windows += ws
        parts += [emb] if ws else []
    embeddings = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
    return timeline_of(
        windows, embeddings, speakers=speakers, threshold=threshold, max_speakers=max_speakers
    )
