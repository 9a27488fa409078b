"""safe_json: oversized, malformed, deep, huge-integer and non-text JSON each get one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convnet_common import model_format as fmt
from convnet_common.safe_json import MAX_JSON_DEPTH, JsonInputError, loads_limited, read_json


def test_good_json_round_trips() -> None:
    value = {"labels": ["cat", "dög"], "size": [224, 224], "acc": 0.97, "none": None, "deep": [[[1]]]}
    assert loads_limited(json.dumps(value), 10_000, "x") == value
    assert loads_limited(json.dumps(value).encode("utf-8"), 10_000, "x") == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x" * 101, r"^thing is 101 bytes, above the 100-byte limit$"),
        ("é" * 60, r"^thing is 120 bytes, above the 100-byte limit$"),
        ('{"a": 1', r"^thing is not valid JSON \(Expecting ',' delimiter at line 1 column 8\)$"),
        ("", r"^thing is not valid JSON \(Expecting value at line 1 column 1\)$"),
        ("[" * 5000 + "]" * 5000, r"^thing is nested too deeply to read$"),
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), r"nested more than 64 levels deep"),
        ("1" * 25, r"^thing has an integer too large to store \(1{24}…\)$"),
        ("[9223372036854775808]", r"integer too large"),
        ('["\\ud800"]', r"invalid \\u escape \(a lone surrogate\)"),
        ('{"\\udfff": 1}', r"lone surrogate"),
    ],
)
def test_bad_text_is_refused_with_one_line(text: str, expected: str) -> None:
    with pytest.raises(JsonInputError, match=expected) as caught:
        loads_limited(text, 100 if len(text) < 200 and "[" not in text else 100_000, "thing")
    assert "\n" not in str(caught.value)


def test_limits_are_inclusive_and_the_deepest_allowed_document_parses() -> None:
    assert loads_limited("1" * 18, 18, "x") == int("1" * 18)
    depth = MAX_JSON_DEPTH
    assert loads_limited("[" * depth + "]" * depth, 1_000, "x") is not None
    assert loads_limited("[9223372036854775807]", 100, "x") == [2**63 - 1]


def test_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(JsonInputError, match=r"^x is not UTF-8 text \(bad byte at offset 2\)$"):
        loads_limited(b'["\xff"]', 100, "x")
    assert loads_limited(b"\xef\xbb\xbf[1]", 100, "x") == [1]  # a BOM is fine


def test_read_json_checks_size_before_reading(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "big.json"
    path.write_text("[" + "1," * 600 + "1]")
    calls = []
    real_loads = json.loads
    monkeypatch.setattr(json, "loads", lambda *a, **k: calls.append(1) or real_loads(*a, **k))
    with pytest.raises(JsonInputError, match=r"^settings is 1,203 bytes, above the 1,000-byte limit$"):
        read_json(path, 1_000, "settings")
    assert calls == []  # refused before any parsing
    assert read_json(path, 2_000, "settings")[0] == 1


def test_read_json_leaves_missing_files_to_the_caller(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_json(tmp_path / "absent.json", 100, "x")


def test_read_json_stops_at_the_limit_for_endless_files() -> None:
    """A character device reports size 0 and never ends: the read stops one byte past the limit."""
    with pytest.raises(JsonInputError, match="above the 1,000-byte limit"):
        read_json("/dev/zero", 1_000, "x")


def test_metadata_json_names_the_key_and_the_expected_value() -> None:
    metadata = {"labels": '["a", 1', "training": "[]", "w\nird": '"x"'}
    with pytest.raises(fmt.MetadataError, match=r"^model metadata 'labels' is not valid JSON .*; expected a list$"):
        fmt.metadata_json(metadata, "labels", list, "a list")
    with pytest.raises(fmt.MetadataError, match=r"^model metadata 'training' must be an object, got list$"):
        fmt.metadata_json(metadata, "training", dict, "an object")
    with pytest.raises(fmt.MetadataError, match=r"'w\\nird' must be"):
        fmt.metadata_json(metadata, "w\nird", dict, "an object")


def test_metadata_size_limits() -> None:
    fmt.check_metadata_size({"a": "x" * fmt.MAX_METADATA_VALUE_BYTES})
    with pytest.raises(fmt.MetadataError, match=r"'a' is 1,000,001 bytes"):
        fmt.check_metadata_size({"a": "x" * (fmt.MAX_METADATA_VALUE_BYTES + 1)})
    many = {f"k{i}": "x" * 900_000 for i in range(5)}
    with pytest.raises(fmt.MetadataError, match=r"\(5 entries\) is 4,500,010 bytes in all"):
        fmt.check_metadata_size(many)
