import numpy as np

from picojepa.export.verify import compare, decisive, passes


def _logits(rows):
    return np.asarray(rows, np.float32)[None]  # one member, (1, B, C)


def test_a_near_tie_flipped_within_the_tolerance_is_no_mismatch():
    ref = _logits([[1.0, 1.004, 0.0], [2.0, 0.0, 0.0]])  # clip 0: top-2 margin 0.004 < 2 x 0.01
    got = _logits([[1.005, 1.0, 0.0], [1.995, 0.0, 0.0]])  # its top-1 flips, every logit within 0.01
    r = compare(ref, got, ["general"], [0], 0.01)
    assert r["members"]["general"]["near_ties"] == 1 and r["top1_agreement"] == 1.0 and passes(r)
    assert list(decisive(ref[0], 0.01)) == [False, True]


def test_a_decisive_clip_that_flips_fails_and_no_tolerance_counts_every_clip():
    ref = _logits([[1.0, 1.004, 0.0], [2.0, 0.0, 0.0]])
    got = _logits([[1.005, 1.0, 0.0], [0.0, 2.0, 0.0]])  # clip 1 was decided by 2.0 and flips
    r = compare(ref, got, ["general"], [0], 0.01)
    assert r["top1_agreement"] == 0.0 and not passes(r)
    scored = compare(ref, _logits([[1.005, 1.0, 0.0], [2.0, 0.0, 0.0]]), ["general"], [0], None)
    assert scored["top1_agreement"] == 0.5 and scored["members"]["general"]["near_ties"] == 0  # int8's score


def test_a_tie_of_votes_broken_by_summed_probability_is_not_compared():
    # four voters, every one decisive (margin 1.0 > 2 x 0.01): two say class 0, two say class 1
    ref = np.asarray([[[1.0, 0.0]], [[1.0, 0.0]], [[0.0, 1.0]], [[0.0, 1.005]]], np.float32)
    got = ref + np.asarray([[[0.0, 0.0]], [[0.005, 0.0]], [[0.0, 0.0]], [[0.0, -0.005]]], np.float32)
    r = compare(ref, got, ["1", "2", "3", "4"], [0, 1, 2, 3], 0.01)
    assert r["vote_near_ties"] == 1 and r["vote_majority_agreement"] == 1.0 and passes(r)
    three = compare(ref[:3], got[:3], ["1", "2", "3"], [0, 1, 2], 0.01)  # 2-1: no tie, compared
    assert three["vote_near_ties"] == 0 and three["vote_majority_agreement"] == 1.0
