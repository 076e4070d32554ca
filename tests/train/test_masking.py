import numpy as np
import pytest

from picojepa.train.masking import batch_masks, future_mask, multiblock_mask, tube_mask

GRID = (4, 8, 8)


@pytest.mark.parametrize("fn", [tube_mask, multiblock_mask])
def test_masks_are_tubes_of_the_exact_ratio(fn):
    ctx, tgt = fn(GRID, 0.75, np.random.default_rng(1))
    assert len(tgt) == 4 * 48 and len(ctx) == 4 * 16
    assert sorted(np.concatenate([ctx, tgt]).tolist()) == list(range(256))
    spatial = [set(tgt[(tgt // 64) == t] % 64) for t in range(4)]
    assert all(s == spatial[0] for s in spatial), "the same positions must be masked in every step"


def test_multiblock_masks_are_contiguous_blocks_not_scattered():
    m = np.zeros(64, bool)
    m[multiblock_mask((1, 8, 8), 0.3, np.random.default_rng(0))[1]] = True
    grid = m.reshape(8, 8)
    neighbours = sum(grid[i, j] and (grid[max(i - 1, 0), j] or grid[i, max(j - 1, 0)])
                     for i in range(8) for j in range(8))
    assert neighbours >= 0.6 * grid.sum()


def test_batch_masks_are_seeded_per_sample():
    a = batch_masks("tube", GRID, 0.75, [1, 2])
    b = batch_masks("tube", GRID, 0.75, [1, 3])
    assert a[0].shape == (2, 64) and a[1].shape == (2, 192)
    assert (a[0][0] == b[0][0]).all() and not (a[0][1] == b[0][1]).all()


@pytest.mark.parametrize("ratio, cut", [(0.5, 2), (0.75, 1), (0.1, 3), (0.99, 1)])
def test_future_mask_predicts_the_last_time_steps_from_the_earlier_ones(ratio, cut):
    ctx, tgt = future_mask(GRID, ratio, np.random.default_rng(0))
    assert ctx.tolist() == list(range(cut * 64)), "context: every token of the first steps"
    assert tgt.tolist() == list(range(cut * 64, 256)), "targets: every token of the rest"


def test_future_mask_refuses_a_single_time_step():
    with pytest.raises(ValueError, match="2 time steps"):
        future_mask((1, 8, 8), 0.5, np.random.default_rng(0))
