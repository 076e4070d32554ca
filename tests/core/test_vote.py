import numpy as np
import pytest

from picojepa.core import vote


def test_majority_counts_top1_votes():
    p = np.array([[[0.6, 0.4]], [[0.6, 0.4]], [[0.7, 0.3]], [[0.1, 0.9]]])
    assert vote.majority(p).tolist() == [0]


def test_majority_tie_goes_to_highest_summed_probability():
    # votes 0, 0, 1, 1: class 0 sums 1.3, class 1 sums 2.7 -> 1
    p = np.array([[[0.55, 0.45]], [[0.55, 0.45]], [[0.1, 0.9]], [[0.1, 0.9]]])
    assert vote.majority(p).tolist() == [1]
    # the same tie the other way round -> 0
    assert vote.majority(p[..., ::-1]).tolist() == [0]


def test_majority_clear_winner_beats_probability_mass():
    p = np.array([[[0.51, 0.49, 0]], [[0.51, 0.49, 0]], [[0.51, 0.49, 0]], [[0.0, 1.0, 0]]])
    assert vote.majority(p).tolist() == [0]


def test_soft_and_weighted():
    p = np.array([[[0.9, 0.1]], [[0.2, 0.8]]])
    labels, conf = vote.combine(p, "soft")
    assert labels.tolist() == [0] and conf[0] == pytest.approx(0.55)
    labels, conf = vote.combine(p, "weighted", [0.1, 0.9])
    assert labels.tolist() == [1] and conf[0] == pytest.approx(0.1 * 0.1 + 0.9 * 0.8)


def test_stacked_applies_the_learned_combiner():
    p = np.array([[[0.7, 0.2, 0.1]], [[0.1, 0.1, 0.8]]])  # 2 members, 1 video, 3 classes
    follow_second = {"weight": np.hstack([np.zeros((3, 3)), np.eye(3)]), "bias": np.zeros(3)}
    labels, conf = vote.combine(p, "stacked", stacker=follow_second)
    assert labels.tolist() == [2] and conf[0] == pytest.approx(0.8)
    follow_first = {"weight": np.hstack([np.eye(3), np.zeros((3, 3))]), "bias": np.zeros(3)}
    np.testing.assert_allclose(vote.stacked(p, follow_first), p[0])
    biased = {**follow_first, "bias": np.array([0.0, 0.0, 5.0])}
    assert vote.combine(p, "stacked", stacker=biased)[0].tolist() == [2]


def test_unknown_vote_and_bad_weights_raise():
    p = np.ones((2, 1, 3)) / 3
    with pytest.raises(ValueError, match="unknown vote"):
        vote.combine(p, "median")
    with pytest.raises(ValueError, match="no stacking meta-model"):
        vote.combine(p, "stacked")
    with pytest.raises(ValueError, match="do not fit 2 members"):
        vote.combine(p, "stacked", stacker={"weight": np.zeros((3, 9)), "bias": np.zeros(3)})
    with pytest.raises(ValueError, match="weights"):
        vote.combine(p, "weighted", [1.0])


def test_vote_weights_are_the_validation_accuracies_and_one_without_a_validation_split():
    assert vote.vote_weights([0.5, 0.0, None, 1]) == [0.5, 0.0, 1.0, 1.0]


def test_vote_weights_when_every_member_validates_at_zero_are_equal():
    """All four partial members at 0 % (what a fold of a real set gave): equal weights, not a
    division by zero; the weighted vote is then the soft vote."""
    assert vote.vote_weights([0.0, 0.0, 0.0, 0.0]) == [1.0, 1.0, 1.0, 1.0]
    p = np.random.default_rng(0).dirichlet(np.ones(3), size=(4, 5))
    np.testing.assert_allclose(vote.weighted(p, [0.0, 0.0, 0.0, 0.0]), vote.soft(p))
    labels, conf = vote.combine(p, "weighted", [0.0] * 4)
    assert labels.tolist() == vote.soft(p).argmax(-1).tolist()


@pytest.mark.parametrize("bad", [[-0.1, 0.5], [float("nan"), 0.5], [True, 0.5], ["0.5", 0.5]])
def test_vote_weights_refuse_what_is_no_accuracy(bad):
    with pytest.raises(ValueError, match="vote weights"):
        vote.vote_weights(bad)
