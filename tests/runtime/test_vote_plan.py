"""The vote plan both ensembles share: who votes, in which order, with which weights."""
import numpy as np

from picojepa.core import vote
from picojepa.runtime.vote_plan import VotePlan


def _probs(rng, m, n=5, c=3):
    p = rng.random((m, n, c))
    return p / p.sum(-1, keepdims=True)


def test_the_plan_votes_its_voters_in_its_order_whatever_order_the_members_come_in():
    rng = np.random.default_rng(0)
    plan = VotePlan(("b", "c"), {"b": 0.2, "c": 0.8}, None)
    names = ["a", "c", "b"]  # "a" answers but does not vote
    p = _probs(rng, 3)
    want = vote.combine(p[[2, 1]], "weighted", [0.2, 0.8])
    got = plan.combine(p, names, "weighted")
    assert np.array_equal(got[0], want[0]) and np.allclose(got[1], want[1])


def test_a_voter_that_did_not_answer_is_left_out_with_its_weight():
    rng = np.random.default_rng(1)
    plan = VotePlan(("b", "c", "d"), {"b": 0.9, "c": 0.05, "d": 0.05}, None)
    p = _probs(rng, 2)
    got = plan.combine(p, ["c", "d"], "weighted")  # "b" is missing
    want = vote.combine(p, "weighted", [0.05, 0.05])
    assert np.array_equal(got[0], want[0]) and np.allclose(got[1], want[1])
