"""record.py: the one build record schema, strict on read."""

from __future__ import annotations

import json

import jsonschema
import pytest
from _records import record, record_json
from wheelfactory import resources
from wheelfactory.record import BuildRecord, RecordError, json_schema, strict_json


def test_schema_file_is_generated_from_the_dataclass() -> None:
    on_disk = json.loads(resources.BUILD_RECORD_SCHEMA.read_text())
    assert on_disk == json_schema(), "run python scripts/update_schemas.py"


def test_records_written_validate_against_the_schema() -> None:
    full = record(
        sources=[{"name": "main", "kind": "git", "pin": "https://x/y.git@" + "0" * 40}],
        known_bad=[{"arch": "9.0", "reason": "wrong output", "use_instead": "2.2.0.post1"}],
        repair={"tool": "auditwheel 6.8", "policy": "manylinux_2_34_x86_64"},
        timings={"build": 1.5}, env={"MAX_JOBS": "2"},
    )  # fmt: skip
    data = json.loads(full.dumps())
    jsonschema.validate(data, json_schema())
    assert BuildRecord.from_json(data) == full


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"version": 1}, "version 1, not 2"),
        ({"targets": "9.0a"}, "targets must be a list"),
        ({"cuda": 13.0}, "cuda must be str"),
        ({"compile_steps": True}, "compile_steps must be int"),
        ({"timings": {"build": "slow"}}, r"timings.build must be float"),
        ({"surprise": 1}, "'surprise' is not a build record key"),
        ({"repair": {"tool": "x"}}, "incomplete"),
        # which, the guard and the GPU gate parse every target: one they cannot is refused
        ({"targets": ["9.0a", "sm_9x"]}, "'sm_9x' is not a GPU target"),
        ({"targets": ["9.0a+PTX"]}, "'9.0a\\+PTX' is not a GPU target"),
    ],
)
def test_wrong_shapes_are_one_line_errors(over: dict, message: str) -> None:
    data = record_json(**over)
    with pytest.raises(RecordError, match=message) as e:
        BuildRecord.from_json(data)
    assert "\n" not in str(e.value)


def test_missing_key_is_named() -> None:
    data = record_json()
    del data["targets"]
    with pytest.raises(RecordError, match="incomplete"):
        BuildRecord.from_json(data)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"a": NaN}', "NaN"),
        (b'{"a": Infinity}', "Infinity"),
        (b"[" * 20 + b"]" * 20, "nests deeper"),
        (b"{not json", "not valid JSON"),
        (b" " * (1 << 21), "over the"),
    ],
)
def test_strict_json_refuses_what_the_manifest_cannot_carry(raw: bytes, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        strict_json(raw, where="x.json")
