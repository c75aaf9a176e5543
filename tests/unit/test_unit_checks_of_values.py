"""The one check of whole numbers and positive numbers a learner passes (xdplab.errors): what it
takes, what it refuses, and that the message names the option, the value and the fix."""
import pytest

from xdplab import text
from xdplab.errors import ClosedError, LabError, check_count, check_positive, is_count, is_positive


@pytest.mark.parametrize("value, least, most, ok", [
    (1, 1, None, True), (0, 1, None, False), (0, 0, None, True), (-1, 0, None, False),
    (256, 1, 256, True), (257, 1, 256, False), (True, 1, None, False), (2.0, 1, None, False),
    ("3", 1, None, False), (None, 1, None, False)])
def test_is_count(value, least, most, ok):
    assert is_count(value, least, most) is ok


@pytest.mark.parametrize("value, ok", [(0.5, True), (3, True), (0, False), (-1.5, False),
                                       (False, False), (True, False), ("1", False), (None, False)])
def test_is_positive(value, ok):
    assert is_positive(value) is ok


def test_check_count_names_the_option_the_value_and_the_fix():
    assert check_count(5, "top", example=20) == 5
    with pytest.raises(LabError) as err:
        check_count(0, "top", example=20)
    assert err.value.message == "top must be a whole number from 1 on, not 0"
    assert err.value.hint == "e.g. top=20"
    with pytest.raises(LabError) as err:
        check_count(2 ** 32, "repeat", most=2 ** 32 - 1)
    assert err.value.message == "repeat must be a whole number from 1 to 4,294,967,295, not 4294967296"
    assert err.value.hint is None
    with pytest.raises(LabError) as err:
        check_count(-1, "slot", least=0, hint="give 0, 1, ...")
    assert "from 0 on, not -1" in err.value.message and err.value.hint == "give 0, 1, ..."


def test_check_positive_names_the_unit():
    assert check_positive(2, "window", unit="seconds") == 2.0
    assert isinstance(check_positive(2, "window"), float)
    with pytest.raises(LabError) as err:
        check_positive("30", "window", unit="seconds", example=30)
    assert err.value.message == "window must be a number of seconds above 0, not '30'"
    assert err.value.hint == "e.g. window=30"
    with pytest.raises(LabError, match="rate must be a number above 0, not -3"):
        check_positive(-3, "rate")


def test_the_refresh_interval_uses_it():
    assert text.check_interval(0.5) == 0.5
    with pytest.raises(LabError) as err:
        text.check_interval(0)
    assert "refresh interval must be a number of seconds above 0, not 0" in err.value.message
    assert "interval=0.5" in err.value.hint


def test_closed_error_is_a_lab_error():
    e = ClosedError("lab 'x' is closed", "make a new one")
    assert isinstance(e, LabError) and str(e) == "lab 'x' is closed\n  → make a new one"
