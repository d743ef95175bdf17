"""Chunks of a live call back in order: duplicates, reordering, late chunks and gaps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentistream.transforms.io.chunks import (
    CallChunk,
    CallEnd,
    ChunkAssembler,
    Gap,
    released_seqs,
)


def chunk(seq: int, n: int, call: str = "c1") -> CallChunk:
    return CallChunk(call, seq, uri=f"/chunks/{call}/{seq}.webm", final=seq == n - 1)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 30).flatmap(
        lambda n: st.tuples(
            st.just(n), st.permutations(range(n)), st.lists(st.integers(0, n - 1), max_size=10)
        )
    )
)
def test_any_order_with_duplicates_gives_every_chunk_once_in_order(case):
    n, order, repeats = case
    asm = ChunkAssembler(max_held=64)
    out = []
    for seq in [*order[: len(order) // 2], *repeats, *order[len(order) // 2 :]]:
        out += asm.add(chunk(seq, n), now=0.0)
    assert released_seqs(out) == list(range(n))
    assert out[-1] == CallEnd("c1", n, "final") and asm.open_calls == 0
    assert not any(isinstance(i, Gap) for i in out)
    # every repeat is either dropped as a duplicate or came after the call closed (late)
    assert asm.stats.duplicates + asm.stats.late == len(repeats)


def test_a_missing_chunk_becomes_a_gap_after_the_timeout_never_invented():
    asm = ChunkAssembler(gap_timeout_s=5.0)
    assert released_seqs(asm.add(chunk(0, 6), now=0.0)) == [0]
    assert asm.add(chunk(2, 6), now=1.0) == [] and asm.add(chunk(3, 6), now=2.0) == []
    assert asm.expire(now=5.9) == []  # chunk 1 may still come
    out = asm.expire(now=6.0)
    assert out[0] == Gap("c1", 1, 1) and released_seqs(out) == [2, 3]
    assert asm.add(chunk(1, 6), now=7.0) == [] and asm.stats.late == 1  # too late: dropped
    out = asm.add(chunk(5, 6), now=8.0) + asm.expire(now=13.0)
    assert out[0] == Gap("c1", 4, 4) and released_seqs(out) == [5]
    assert out[-1] == CallEnd("c1", 4, "final")
    assert (asm.stats.gaps, asm.stats.missing_chunks) == (2, 2)


def test_too_many_held_chunks_give_up_the_gap_at_once():
    asm = ChunkAssembler(gap_timeout_s=60.0, max_held=3)
    out = []
    for seq in (1, 2, 3, 4):  # 0 never comes; a fourth held chunk is one too many
        out += asm.add(chunk(seq, 100), now=0.0)
    assert out[0] == Gap("c1", 0, 0) and released_seqs(out) == [1, 2, 3, 4]


def test_an_idle_call_is_closed_and_its_late_chunks_dropped():
    asm = ChunkAssembler(idle_timeout_s=30.0)
    asm.add(chunk(0, 100), now=0.0)
    asm.add(chunk(1, 100, call="c2"), now=0.0)
    out = asm.expire(now=30.0)
    assert CallEnd("c1", 1, "idle") in out
    assert Gap("c2", 0, 0) in out and CallEnd("c2", 1, "idle") in out
    assert asm.open_calls == 0
    assert asm.add(chunk(1, 100), now=31.0) == [] and asm.stats.late == 1


def test_calls_are_independent():
    asm = ChunkAssembler()
    out = (
        asm.add(chunk(1, 2, "a"), 0.0)
        + asm.add(chunk(0, 2, "b"), 0.0)
        + asm.add(chunk(0, 2, "a"), 0.0)
    )
    assert [(i.call_id, i.seq) for i in out if isinstance(i, CallChunk)] == [
        ("b", 0),
        ("a", 0),
        ("a", 1),
    ]


def test_a_chunk_carries_its_media_one_way():
    with pytest.raises(ValueError, match="either by uri or inline"):
        CallChunk("c", 0)
    with pytest.raises(ValueError, match="seq"):
        CallChunk("c", -1, data=b"x")
