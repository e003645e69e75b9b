"""Bounded waits: the first value, the deadline kept, and a timeout that says what, how long and the last state."""

from __future__ import annotations

import time

import pytest

from artm_compose.errors import BootstrapError, BootstrapTimeout, WaitTimeout
from artm_compose.waiting import poll_until, wait_until


def after(calls: int, value):
    """A check that gives None ``calls - 1`` times, then ``value``; it counts its calls."""
    seen = []

    def check():
        seen.append(len(seen))
        return value if len(seen) >= calls else None

    check.seen = seen
    return check


def test_returns_the_first_value_without_waiting_when_it_is_there():
    started = time.monotonic()
    assert wait_until(lambda: "ready", 5.0, "something") == "ready"
    assert time.monotonic() - started < 0.1


def test_polls_until_the_check_gives_a_value():
    check = after(3, {"report": 1})
    assert wait_until(check, 5.0, "the report", interval=0.01) == {"report": 1}
    assert len(check.seen) == 3


def test_false_means_not_yet_and_falsy_values_count():
    check = after(2, True)
    assert wait_until(lambda: check() or False, 5.0, "a condition", interval=0.01) is True
    assert len(check.seen) == 2
    assert wait_until(lambda: 0, 1.0, "a zero") == 0
    assert wait_until(lambda: "", 1.0, "an empty string") == ""


def test_timeout_names_what_how_long_and_the_last_state():
    observed = []

    def check():
        observed.append(f"observation {len(observed) + 1}")
        return None

    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        wait_until(check, 0.1, "redis-1 to answer", interval=0.02, describe=lambda: observed[-1])
    elapsed = time.monotonic() - started
    assert 0.1 <= elapsed < 0.5
    assert str(caught.value) == f"timed out after 0.1 s waiting for redis-1 to answer; last seen: {observed[-1]}"
    assert isinstance(caught.value, TimeoutError)


def test_without_describe_the_message_ends_after_what():
    with pytest.raises(WaitTimeout, match=r"^timed out after 0.05 s waiting for nothing$"):
        wait_until(lambda: None, 0.05, "nothing", interval=0.01)


def test_the_domain_error_class_is_raised_and_stays_a_timeout():
    with pytest.raises(BootstrapError) as caught:
        wait_until(lambda: None, 0.02, "the cluster", interval=0.01, error=BootstrapTimeout)
    assert isinstance(caught.value, BootstrapTimeout) and isinstance(caught.value, TimeoutError)


def test_the_check_runs_once_more_at_the_deadline_and_the_sleep_does_not_overshoot():
    times = []

    def check():
        times.append(time.monotonic())
        return None

    started = time.monotonic()
    assert poll_until(check, 0.15, interval=1.0) is None
    # The 1 s interval is cut to the 0.15 s left: one check at the start, one at the deadline.
    assert len(times) == 2
    assert 0.15 <= times[-1] - started < 0.4


def test_a_condition_met_at_the_last_check_is_returned():
    start = time.monotonic()
    assert poll_until(lambda: time.monotonic() - start >= 0.1 or None, 0.1, interval=5.0) is True


def test_zero_timeout_checks_once():
    check = after(2, "late")
    assert poll_until(check, 0.0) is None
    assert len(check.seen) == 1


def test_an_error_raised_by_the_check_stops_the_wait_at_once():
    def check():
        raise BootstrapError("redis-0 exited right after start")

    started = time.monotonic()
    with pytest.raises(BootstrapError, match="exited right after start"):
        wait_until(check, 5.0, "redis-0 to open its port")
    assert time.monotonic() - started < 0.1
