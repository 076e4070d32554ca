from dataclasses import dataclass
from typing import Literal

import pytest

from picojepa.core.typed import build


class Bad(ValueError):
    pass


@dataclass(frozen=True)
class Inner:
    size: int = 1
    kind: Literal["a", "b"] = "a"

    def __post_init__(self):
        if self.size < 1:
            raise ValueError(f"size: must be >= 1, got {self.size}")


@dataclass(frozen=True)
class Outer:
    items: tuple[Inner, ...] = ()
    pair: tuple[float, float] = (0.0, 1.0)
    limit: float | None = None
    extra: dict | None = None
    inner: Inner = Inner()
    either: bool | float | None = None


def test_nested_lists_optionals_and_mappings_are_built_and_converted():
    o = build(Outer, {"items": [{"size": 2}, {"kind": "b"}], "pair": [1, 2], "limit": None,
                      "extra": {"x.y": 3}, "inner": {"size": 4}}, Bad)
    assert o == Outer((Inner(2), Inner(1, "b")), (1.0, 2.0), None, {"x.y": 3}, Inner(4))
    assert build(Outer, {"limit": 3}, Bad).limit == 3.0
    assert [build(Outer, {"either": v}, Bad).either for v in (True, 0.5, None)] == [True, 0.5, None]
    with pytest.raises(Bad, match="either: expected a finite number"):
        build(Outer, {"either": "x"}, Bad)


@pytest.mark.parametrize("data,message", [
    ({"items": [{"size": 0}]}, "items[0].size: must be >= 1, got 0"),
    ({"items": [{"sise": 2}]}, "items[0].sise: unknown key (known: kind, size)"),
    ({"items": {"size": 2}}, "items: expected a list"),
    ({"inner": {"kind": "c"}}, "inner.kind: must be one of ['a', 'b'], got 'c'"),
    ({"pair": [1]}, "pair: expected a list of 2 values"),
    ({"limit": "high"}, "limit: expected a finite number"),
    ({"limit": True}, "limit: expected a finite number"),
    ({"extra": [1]}, "extra: expected a mapping"),
    ({1: 2}, "1: keys must be names, got a int"),
])
def test_each_misfit_is_one_error_of_the_callers_type_naming_the_full_key(data, message):
    with pytest.raises(Bad) as e:
        build(Outer, data, Bad)
    assert str(e.value).startswith(message), str(e.value)
