"""The one YAML reader bounds what its aliases expand to, for recipes, camera files and --set alike."""
import pytest

from picojepa.core.errors import PicoJepaError
from picojepa.core.textio import MAX_ALIAS_VALUES, parse_yaml


class MyError(PicoJepaError):
    pass


def test_an_alias_inside_its_own_anchor_is_refused():
    for text in ("&a [*a]", "&a {k: [1, *a]}"):
        with pytest.raises(MyError, match=r"^--set k: refused: an alias inside its own anchor \(line 1\)"):
            parse_yaml(text, "--set k", MyError)


def test_aliases_within_the_bound_still_read():
    assert parse_yaml("a: &x [1, 2]\nb: [*x, *x]\n", "f") == {"a": [1, 2], "b": [[1, 2], [1, 2]]}
    under = f"a: &x [{', '.join(['0'] * (MAX_ALIAS_VALUES - 1))}]\nb: *x\n"  # the alias adds the list and its items
    assert len(parse_yaml(under, "f")["b"]) == MAX_ALIAS_VALUES - 1
    with pytest.raises(MyError, match="refused: its aliases expand to 10001 more values"):
        parse_yaml(under.replace("[0, ", "[0, 0, ", 1), "f", MyError)


def test_an_integer_too_long_for_python_is_a_typed_error_not_a_traceback():
    with pytest.raises(MyError, match="f: not valid YAML .*4300 digits"):
        parse_yaml("seed: " + "9" * 5000, "f", MyError)
