"""Occlusion maps: the block without which the answer loses its class is the map's peak."""
import numpy as np

from picojepa.core.occlusion import edges, heat, occlusion_map, overlay


def _one_region_matters(t0, t1, y0, y1, x0, x1):
    """An answer that reads one block of the clip only: class 1 the brighter it is there."""
    def scores(batch):
        z = batch[:, :, t0:t1, y0:y1, x0:x1].mean(axis=(1, 2, 3, 4)) * 4
        p1 = 1 / (1 + np.exp(-z))
        return np.stack([1 - p1, p1], axis=1)
    return scores


def test_the_map_peaks_on_the_only_region_that_matters():
    clip = np.ones((3, 8, 32, 32), np.float32)  # bright everywhere: class 1
    m = occlusion_map(clip, _one_region_matters(4, 6, 8, 16, 24, 32), time_blocks=4, cells=4)
    assert m.target == 1 and m.drop.shape == (4, 4, 4)
    assert np.unravel_index(int(m.drop.argmax()), m.drop.shape) == (2, 1, 3)
    assert m.drop.max() > 0.3 and np.abs(np.delete(m.drop.ravel(), m.drop.argmax())).max() < 1e-6


def test_the_overlay_tints_that_region_only():
    clip = np.ones((3, 8, 32, 32), np.float32)
    m = occlusion_map(clip, _one_region_matters(0, 2, 0, 8, 0, 8))
    frames = np.full((8, 64, 64, 3), 100, np.uint8)
    shown = overlay(frames, m)
    assert (shown[:2, :16, :16, 0] > 150).all() and (shown[2:] == 100).all() and (shown[:, 16:] == 100).all()
    assert heat(m, 4, 8, 8).shape == (4, 8, 8)


def test_edges_cover_the_clip():
    assert edges(8, 4) == [(0, 2), (2, 4), (4, 6), (6, 8)] and edges(5, 2) == [(0, 2), (2, 5)]
