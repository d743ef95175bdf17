import dataclasses
import json

import pyarrow as pa
import pytest

from sentistream.transforms.schema import (
    DEAD_LETTER_SCHEMA,
    SCHEMA_VERSION,
    SCORE_SCHEMA,
    DeadLetterRow,
    ScoreRow,
    arrow_schema,
    to_json,
)


def test_schema_matches_record_fields_and_nullability():
    names = [f.name for f in dataclasses.fields(ScoreRow)]
    assert SCORE_SCHEMA.names == names
    assert SCORE_SCHEMA.field("fused_valence").nullable
    assert not SCORE_SCHEMA.field("segment_id").nullable
    assert SCORE_SCHEMA.field("channel").type == pa.int64()
    assert SCORE_SCHEMA.metadata[b"sentistream.schema_version"] == SCHEMA_VERSION.encode()
    assert DEAD_LETTER_SCHEMA.names == [f.name for f in dataclasses.fields(DeadLetterRow)]


def test_unsupported_annotation_is_rejected():
    @dataclasses.dataclass
    class Bad:
        x: list[int]

    with pytest.raises(TypeError, match="column 'x'"):
        arrow_schema(Bad)


def test_json_payload_has_the_parquet_columns():
    row = DeadLetterRow(SCHEMA_VERSION, "v", "/x.mp4", None, "decode", "E", "boom", None, 1.0)
    payload = json.loads(to_json(row))
    assert list(payload) == sorted(DEAD_LETTER_SCHEMA.names)
    table = pa.Table.from_pylist([dataclasses.asdict(row)], schema=DEAD_LETTER_SCHEMA)
    assert table.num_rows == 1
