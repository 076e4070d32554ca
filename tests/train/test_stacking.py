import numpy as np

from picojepa.train import stacking


def _members(n, rng, reliable=1, classes=3, members=4):
    """Probabilities of `members` members on n videos: member `reliable` is right 90 % of the
    time, the others are noise."""
    y = rng.integers(0, classes, n)
    p = rng.dirichlet(np.ones(classes), size=(members, n))
    good = rng.random(n) < 0.9
    p[reliable, good] = 0.05 / (classes - 1)
    p[reliable, good, y[good]] = 0.95
    return p, y


def test_the_stacker_learns_to_follow_the_reliable_member():
    rng = np.random.default_rng(0)
    p, y = _members(60, rng)
    stacker, note = stacking.fit(p, y, 3)
    assert stacker is not None and "60 videos" in note
    w = np.abs(np.asarray(stacker["weight"])).reshape(3, 4, 3).sum(axis=(0, 2))
    assert w.argmax() == 1  # most weight on member 1
    test_p, test_y = _members(200, np.random.default_rng(1))
    from picojepa.core.vote import combine

    stacked = (combine(test_p, "stacked", stacker=stacker)[0] == test_y).mean()
    soft = (combine(test_p, "soft")[0] == test_y).mean()
    assert stacked > 0.85 and stacked > soft + 0.1


def test_too_few_videos_or_one_class_fits_nothing():
    rng = np.random.default_rng(0)
    p, y = _members(5, rng)
    assert stacking.fit(p, y, 3)[0] is None
    p, _ = _members(20, rng)
    stacker, note = stacking.fit(p, np.zeros(20, dtype=int), 3)
    assert stacker is None and "1 classes" in note


def test_fit_is_deterministic():
    p, y = _members(40, np.random.default_rng(3))
    assert stacking.fit(p, y, 3)[0] == stacking.fit(p, y, 3)[0]


def test_validation_split_is_stratified_and_keeps_a_video_of_each_class_to_train():
    from picojepa.train.probe import split_val

    labels = np.array([0] * 10 + [1] * 5 + [2] * 1)
    tr, va = split_val(labels, 0.4, seed=0)
    assert sorted(np.bincount(labels[va], minlength=3).tolist()) == [0, 2, 4]
    assert set(labels[tr]) == {0, 1, 2} and len(set(tr) | set(va)) == 16 and not set(tr) & set(va)


def test_with_nothing_to_learn_cross_validation_keeps_the_stacker_near_averaging():
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(3), size=(4, 40))  # members are noise, labels unrelated
    y = rng.integers(0, 3, 40)
    stacker, _ = stacking.fit(p, y, 3)
    assert stacker["l2"] >= 1.0
    w = np.asarray(stacker["weight"])
    prior = np.hstack([np.eye(3) / 4] * 4)
    assert np.abs(w - prior).max() < 0.2
