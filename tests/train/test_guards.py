"""The report's first lines flag results that only a confound explains: below chance, or a
shuffled-label control above it."""
import math

import pytest

from picojepa.train.guards import SHUFFLED, chance_band, warnings


def test_chance_band_is_the_spread_of_guessing_on_these_labels():
    chance, sd = chance_band([0] * 10 + [1] * 30, 2)
    assert chance == 50.0
    assert sd == pytest.approx(100 * math.sqrt((0.25 / 10 + 0.25 / 30) / 4))


def _report(**acc):
    labels = [i % 10 for i in range(88)]  # ten classes, 88 held-out videos
    return {"classes": [str(i) for i in range(10)], "held_out_videos": 88,
            "predictions": {"labels": labels},
            "accuracy": {"general": 30.0, "random_init_probe": 20.0, SHUFFLED: 10.0, **acc}}


def test_a_result_below_chance_is_flagged_first_and_named():
    text = "\n".join(warnings(_report(general=2.0)))
    assert "below chance" in text and "general 2.00" in text
    assert "below chance" not in "\n".join(warnings(_report(general=9.0)))  # within guessing's spread


def test_a_shuffled_label_control_above_chance_is_flagged():
    assert "shuffled-label control" in "\n".join(warnings(_report(**{SHUFFLED: 40.0})))
    assert "shuffled-label control" not in "\n".join(warnings(_report(**{SHUFFLED: 12.0})))


def test_a_summary_of_repeated_runs_without_labels_is_judged_on_as_many_videos():
    r = _report(general=2.0)
    del r["predictions"]
    assert "below chance" in "\n".join(warnings(r))
