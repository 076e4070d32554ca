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
    assert len(cached.frames) == len(items) and not plain.frames
    s = smoke_recipe.clip.size
    one_video = min(len(f) for f in cached.frames.values()) * s * s * 3
    tight = ClipDataset(items, smoke_recipe.clip, cache_mb=1.5 * one_video / 2**20)
    for i in range(len(tight)):
        assert tight[i]["error"] is None
    assert 1 <= len(tight.frames) < len(items), "stops caching at the budget, still decodes the rest"
    assert tight.cache_left >= 0
