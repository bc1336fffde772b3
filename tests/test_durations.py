"""ISO 8601 durations as the packs use them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT24H", 86400.0),
        ("PT1H", 3600.0),
        ("P7D", 604800.0),
        ("PT1H30M", 5400.0),
        ("PT0.5S", 0.5),
        ("P1W", 604800.0),
        ("P1DT2H", 93600.0),
    ],
)
def test_parses_the_deadlines_packs_use(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "",
        "P",
        "PT",
        "-PT5M",
        "PT0S",
        "24h",
        "P1Y",
        "P1M",
        "PT5M ago",
        "P4000D",
        "P" + "9" * 400 + "D",
    ],
)
def test_refuses_what_is_not_a_positive_fixed_duration(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@given(st.integers(0, 30), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_round_trip_of_components(days: int, hours: int, minutes: int, seconds: int) -> None:
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    text = f"P{days}DT{hours}H{minutes}M{seconds}S"
    if total == 0:
        with pytest.raises(ValueError, match="positive"):
            parse_duration(text)
    else:
        assert parse_duration(text) == total


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (86400, "24 h"),
        (90061, "25 h 1 min"),
        (172800, "48 h"),
        (176400, "2 d 1 h"),
        (604800, "7 d"),
        (2 * 86400 + 6 * 3600 + 59, "2 d 6 h"),
        (5400, "1 h 30 min"),
        (7243, "2 h 1 min"),
        (7210, "2 h"),
        (3599.6, "1 h"),
        (45, "45 s"),
        (1.79, "1.79 s"),
        (60, "1 min"),
        (119.7, "2 min"),
    ],
)
def test_formats_for_people(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.floats(60, 10 * 366 * 86400))
def test_formats_with_at_most_two_adjacent_units(seconds: float) -> None:
    words = format_duration(seconds).split()
    names = words[1::2]
    order = ["d", "h", "min", "s"]
    assert 1 <= len(names) <= 2
    if len(names) == 2:
        assert order.index(names[1]) == order.index(names[0]) + 1
    assert "d" not in names or seconds > 2 * 86400 - 1
