"""A transition's update applied to the engine's copy of a probe's row: the row the store
holds once the update is written, as dataclasses.replace would make it."""

from __future__ import annotations

import dataclasses

from audit.store_protocol import NO_CHANGE, ProbeUpdate
from audit.store_rows import ProbeRow


def _row() -> ProbeRow:
    return ProbeRow(
        run_id="r",
        probe_id="p-1",
        seq=1,
        criterion_id="c",
        expectation="violating",
        probe={"text": "t"},
        trigger="order",
        deadline_s=86400.0,
        grace_s=0.0,
        state="planned",
        next_at=10.0,
        scheduled_at=10.0,
        post_id=None,
        submitted_at=None,
        clock_start=None,
        deadline_at=None,
        offsets=None,
        poll_index=0,
        withdrawn_at=None,
        outcome=None,
        note=None,
    )


def test_an_update_gives_the_row_replace_gives() -> None:
    row = _row()
    every = ProbeUpdate(
        state="watching",
        next_at=None,
        scheduled_at=11.0,
        post_id="42",
        submitted_at=12.0,
        clock_start=13.0,
        deadline_at=14.0,
        offsets=[1.0, 2.0],
        poll_index=2,
        withdrawn_at=15.0,
        outcome="survived",
        note="n",
    )
    for update in (every, ProbeUpdate(state="noticing", next_at=20.0), NO_CHANGE):
        applied = update.applied_to(row)
        assert applied == dataclasses.replace(row, **update.changes())
        assert type(applied) is ProbeRow
        assert dataclasses.asdict(applied) == {**dataclasses.asdict(row), **update.changes()}
    assert row == _row()  # the row it was applied to is left as it was
    # the shortcut holds only while a row is a plain dataclass: its fields are its __dict__
    assert not hasattr(ProbeRow, "__post_init__")
    assert not hasattr(ProbeRow, "__slots__")
