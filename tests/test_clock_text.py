"""``utc_iso`` writes exactly what datetime writes for the same instant, for every float."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from audit.clock import utc_iso


def reference(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


@given(
    st.one_of(
        st.floats(min_value=-2e9, max_value=253_402_300_799.0),
        # instants of a run: near now, on and around millisecond and microsecond boundaries
        st.integers(min_value=1_700_000_000_000, max_value=1_900_000_000_000).map(
            lambda ms: ms / 1000
        ),
        st.integers(min_value=1_700_000_000_000_000, max_value=1_900_000_000_000_000).map(
            lambda us: us / 1e6 + 5e-7
        ),
        st.integers(min_value=0, max_value=10**9),
    )
)
@example(0.0)
@example(1_764_806_400.9999996)  # rounds up into the next second
@example(1_764_806_399.9999995)
@example(86_399.9999999)  # and into the next day
@example(253_402_300_798.9999999)
@example(-0.0005)
def test_utc_iso_is_datetime_text(epoch: float) -> None:
    assert utc_iso(epoch) == reference(epoch)


def test_none_and_out_of_range() -> None:
    assert utc_iso(None) is None
    for bad in (float("nan"), float("inf"), 1e20):
        with pytest.raises((ValueError, OverflowError, OSError)):
            reference(bad)
        with pytest.raises((ValueError, OverflowError, OSError)):
            utc_iso(bad)
