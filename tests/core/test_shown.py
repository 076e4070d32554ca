"""Values in messages: `shown` and `cut` keep any value a user wrote to a short line."""
import time

from picojepa.core.shown import LIMIT, cut, shown


def test_a_short_value_is_shown_as_its_repr():
    assert shown("tube") == "'tube'" and shown([1, 2.5, None]) == "[1, 2.5, None]" and shown({"a": 1}) == "{'a': 1}"
    assert cut("model.depth") == "model.depth"


def test_a_huge_string_bytes_or_integer_is_cut_to_the_limit():
    for value in ("x" * 10_000_000, b"\xff" * 10_000_000, "a\nb" * 1000):
        text = shown(value)
        assert len(text) <= LIMIT and "..." in text and "\n" not in text
    assert shown(7 ** 100_000) == "<an integer of 280736 bits>"  # str() of it would raise (> 4300 digits)
    assert len(cut("k" * 10_000, 20)) == 20


def test_a_list_shared_a_billion_times_is_shown_without_building_its_repr():
    value = ["lol"] * 9
    for _ in range(9):  # what nested YAML aliases make: 9**10 items, each list shared
        value = [value] * 9
    start = time.monotonic()
    text = shown(value)
    assert len(text) <= LIMIT and time.monotonic() - start < 1.0
