from pathlib import Path

import numpy as np

from picojepa.train.dataset import ClipDataset
from picojepa.train.layout import read_items


def test_frame_cache_serves_the_same_clips_as_decoding_and_respects_its_budget(smoke_recipe, smoke_data):
    items = read_items(Path(smoke_data) / "train" / "train.csv")[:6]
    plain = ClipDataset(items, smoke_recipe.clip, seed=3, clips_per_video=2)
    cached = ClipDataset(items, smoke_recipe.clip, seed=3, clips_per_video=2, cache_mb=64)
    for epoch in (0, 1):
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in range(len(plain)):
            a, b = plain[i], cached[i]
            assert b["error"] is None
            np.testing.assert_array_equal(a["clip"].numpy(), b["clip"].numpy())
    assert cached.cached_videos == len(items) and plain.cached_videos == 0
    budget = 1.5 * cached.cached_bytes / len(items)  # room for one video and a half, on average
    tight = ClipDataset(items, smoke_recipe.clip, cache_mb=budget / 2**20)
    for i in range(len(tight)):
        assert tight[i]["error"] is None
    assert 1 <= tight.cached_videos < len(items), "stops caching at the budget, still decodes the rest"
    assert tight.cached_bytes <= budget
