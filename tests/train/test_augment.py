"""Augmentation keeps a clip's motion: one mirror and one crop for all its frames."""
from pathlib import Path

import numpy as np
import pytest

from picojepa.train.augment import Augment
from picojepa.train.config import ConfigError
from picojepa.train.recipe_file import load_recipe
from picojepa.train.dataset import ClipDataset
from picojepa.train.layout import read_items

REPO = Path(__file__).resolve().parents[2]


def _moving_dot(frames=8, size=32) -> np.ndarray:
    """A white 2x2 dot stepping 3 pixels right per frame on black."""
    f = np.zeros((frames, size, size, 3), np.uint8)
    for t in range(frames):
        f[t, 14:16, 2 + 3 * t:4 + 3 * t] = 255
    return f


def _column(frame: np.ndarray) -> float:
    """Where the bright mass of a frame is, left to right."""
    mass = frame.astype(float).sum(axis=(0, 2))
    return float((mass * np.arange(len(mass))).sum() / mass.sum())


def test_off_changes_nothing_and_a_flip_mirrors_every_frame():
    f = _moving_dot()
    rng = np.random.default_rng(0)
    assert not Augment().active and np.array_equal(Augment()(f, rng), f)
    mirrored = Augment(flip=1.0)(f, rng)
    assert np.array_equal(mirrored, f[:, :, ::-1])
    xs = [_column(x) for x in mirrored]
    assert all(b < a for a, b in zip(xs, xs[1:])), "the dot now moves left, step by step"


def test_a_crop_is_the_same_for_every_frame_so_the_motion_survives():
    f = _moving_dot()
    for seed in range(5):
        out = Augment(crop_scale=0.5)(f, np.random.default_rng(seed))
        assert out.shape == f.shape and out.dtype == np.uint8
        still = Augment(crop_scale=0.5)(np.repeat(f[:1], 8, axis=0), np.random.default_rng(seed))
        assert all(np.array_equal(still[0], s) for s in still), "one crop for the whole clip"
        xs = [_column(x) for x in out if x.any()]
        steps = np.diff(xs)
        assert len(xs) >= 2 and (steps > 0).all() and np.ptp(steps) < 1.5, "steady rightward steps"


def test_the_training_dataset_augments_reproducibly_and_never_the_evaluation_window(smoke_recipe, smoke_data):
    items = read_items(Path(smoke_data) / "train" / "train.csv")[:3]
    aug = Augment(flip=0.5, crop_scale=0.6)
    a, b = (ClipDataset(items, smoke_recipe.clip, seed=3, augment=aug) for _ in range(2))
    plain = ClipDataset(items, smoke_recipe.clip, seed=3)
    for i in range(len(items)):
        np.testing.assert_array_equal(a[i]["clip"].numpy(), b[i]["clip"].numpy())
    assert any(not np.array_equal(a[i]["clip"].numpy(), plain[i]["clip"].numpy()) for i in range(len(items)))
    centre = ClipDataset(items, smoke_recipe.clip, mode="center", augment=aug)
    same = ClipDataset(items, smoke_recipe.clip, mode="center")
    np.testing.assert_array_equal(centre[0]["clip"].numpy(), same[0]["clip"].numpy())


@pytest.mark.parametrize("key,value", [("flip", 1.5), ("crop_scale", 0.0), ("crop_scale", 1.2)])
def test_the_recipe_refuses_impossible_augmentation(key, value):
    with pytest.raises(ConfigError, match=key):
        load_recipe(REPO / "configs" / "smoke.yaml", {"pretrain": {key: value}})
