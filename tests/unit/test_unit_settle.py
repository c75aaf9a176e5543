"""settled(): the one "wait until it stops changing" loop (lab.settle, measure, the traffic panel,
the lessons' late frames), on readings made up here: a clock that only moves when it sleeps.
(Times are sums of powers of two, so the fake clock adds them up exactly.)"""
import pytest

from xdplab.lab import settle


@pytest.fixture
def clock(monkeypatch):
    """A fake monotonic clock: time.sleep(s) moves it by s, nothing else does."""
    now = [100.0]
    monkeypatch.setattr(settle.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(settle.time, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    return now


def readings(*values):
    """read() giving `values` in turn, then the last one for ever; .calls counts the reads."""
    it = iter(values)
    state = {"last": None, "calls": 0}

    def read():
        state["calls"] += 1
        state["last"] = next(it, state["last"])
        return state["last"]
    read.state = state
    return read


def test_it_returns_once_the_value_held_still_for_quiet_seconds(clock):
    read = readings(1, 2, 3, 3, 3)
    t0 = clock[0]
    assert settle.settled(read, quiet=0.25, limit=5, poll=0.125) == 3
    # the value last changed at the third read (after 0.25 s); then 0.25 s of the same
    assert clock[0] - t0 == 0.5


def test_it_gives_up_after_limit_with_the_last_value(clock):
    counter = iter(range(10 ** 6))
    t0 = clock[0]
    got = settle.settled(lambda: next(counter), quiet=0.25, limit=1.0, poll=0.125)
    assert clock[0] - t0 == 1.0 and got == 8       # read at 0, 0.125, ... 1.0: still moving


def test_enough_stops_it_at_once(clock):
    read = readings(5, 9, 10, 11)
    assert settle.settled(read, quiet=10, limit=60, poll=0.125, enough=lambda n: n >= 10) == 10
    assert read.state["calls"] == 3


def test_an_earlier_reading_is_compared_with_the_first_one(clock):
    # a reading long ago that is still the same: quiet already, one read to make sure
    read = readings(7)
    assert settle.settled(read, quiet=0.25, limit=1, last=7, since=clock[0] - 5) == 7
    assert read.state["calls"] == 1
    # it changed since: the quiet time starts again from now
    read = readings(8, 8)
    t0 = clock[0]
    assert settle.settled(read, quiet=0.25, limit=1, last=7, since=clock[0] - 5, poll=0.125) == 8
    assert clock[0] - t0 == 0.25


def test_by_default_it_polls_a_fifth_of_quiet(clock):
    read = readings(1)
    settle.settled(read, quiet=0.625, limit=5)
    assert read.state["calls"] == 6               # the first read and five more, 0.125 s apart
