"""Stored rows read back: the row a store's columns give, and a damaged column refused as
damage (DamagedRow), never a crash or a row of the wrong types."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.store_rows import DamagedRow, ProbeRow, probe_from_sql


def _columns(**changes: Any) -> dict[str, Any]:
    columns: dict[str, Any] = {
        "run_id": "r",
        "probe_id": "p-1",
        "seq": 1,
        "criterion_id": "c",
        "expectation": "violating",
        "probe_json": json.dumps({"text": "t", "language": "vi"}),
        "trigger": "order",
        "deadline_s": 86400.0,
        "grace_s": 0.0,
        "state": "watching",
        "next_at": 10.0,
        "scheduled_at": 10.0,
        "post_id": "42",
        "submitted_at": 11.0,
        "clock_start": 12.0,
        "deadline_at": 86412.0,
        "offsets": json.dumps([60, 120.5, 300]),
        "poll_index": 2,
        "withdrawn_at": None,
        "outcome": None,
        "note": None,
    }
    columns.update(changes)
    return columns


def test_a_probe_row_is_the_dataclass_its_columns_make() -> None:
    row = probe_from_sql(_columns())
    columns = _columns()
    expected = ProbeRow(
        **{k: v for k, v in columns.items() if k not in ("probe_json", "offsets")},
        probe={"text": "t", "language": "vi"},
        offsets=[60, 120.5, 300],
    )
    assert row == expected
    assert dataclasses.asdict(row) == dataclasses.asdict(expected)
    assert dataclasses.replace(row, note="n").note == "n"
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.note = "n"  # type: ignore[misc]


@pytest.mark.parametrize(
    "offsets",
    ["5", '{"a": 1}', '"60"', '[1, "x"]', "[true]", "[1, null]", "[[1]]", "not json"],
)
def test_offsets_that_are_not_a_list_of_numbers_are_damage(offsets: str) -> None:
    with pytest.raises(DamagedRow, match="offsets"):
        probe_from_sql(_columns(offsets=offsets))


@pytest.mark.parametrize(
    ("column", "value"),
    [("seq", "1"), ("deadline_s", "86400"), ("state", "lost"), ("outcome", 3), ("note", 1.0)],
)
def test_a_column_of_the_wrong_type_or_value_is_damage(column: str, value: object) -> None:
    with pytest.raises(DamagedRow, match=column):
        probe_from_sql(_columns(**{column: value}))


def test_a_missing_or_extra_column_is_damage() -> None:
    columns = _columns()
    del columns["note"]
    with pytest.raises(DamagedRow, match="note"):
        probe_from_sql(columns)
    with pytest.raises(DamagedRow, match="extra"):
        probe_from_sql(_columns(extra=1))


@given(st.lists(st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False))))
def test_any_list_of_numbers_is_read_back_as_stored(offsets: list[float]) -> None:
    row = probe_from_sql(_columns(offsets=json.dumps(offsets)))
    assert row.offsets == offsets
