"""transforms/rows.py: what a score row carries of its input."""

from __future__ import annotations


def test_metadata_too_big_for_a_row_is_truncated_and_says_so():
    import json

    from sentistream.transforms.rows import MAX_METADATA_CHARS, TRUNCATED_KEY, metadata_json

    small = {"consent": "true", "source": "eu"}
    assert json.loads(metadata_json(small)) == small
    big = {f"k{i:04d}": "x" * 3000 for i in range(300)}  # 900 KB of metadata
    out = metadata_json(big)
    assert len(out) <= MAX_METADATA_CHARS
    kept = json.loads(out)
    assert (
        kept[TRUNCATED_KEY].endswith("chars in all") and "of 300 keys kept" in kept[TRUNCATED_KEY]
    )
    assert all(len(v) <= 1024 for k, v in kept.items() if k != TRUNCATED_KEY)
