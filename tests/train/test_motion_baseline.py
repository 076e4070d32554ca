import numpy as np

from picojepa.train.motion_baseline import FRAMES, N_FEATURES, SIZE, motion_baseline, motion_features
from picojepa.train.guards import warnings as _warnings


def _square(direction: int) -> np.ndarray:
    """A white square crossing a black frame, to the right (+1) or to the left (-1)."""
    frames = np.zeros((FRAMES, SIZE, SIZE, 3), np.uint8)
    for t in range(FRAMES):
        x = 8 + 2 * t if direction > 0 else SIZE - 16 - 2 * t
        frames[t, 24:32, x:x + 8] = 255
    return frames


def test_motion_features_see_where_and_which_way_things_move():
    right, left = motion_features(_square(+1)), motion_features(_square(-1))
    still = motion_features(np.full((FRAMES, SIZE, SIZE, 3), 128, np.uint8))
    assert right.shape == (N_FEATURES,) == (38,)
    assert np.all(still[:-1] == 0) and still[-1] > 0  # no motion energy; only the brightness
    drift_x = 16 + (FRAMES - 1) + 4
    assert right[drift_x] > 0 > left[drift_x]
    assert right[:16].reshape(4, 4)[1].sum() > 0 and right[:16].reshape(4, 4)[3].sum() == 0  # the row it crosses


def test_motion_baseline_predicts_every_held_out_video_and_marks_undecodable_ones(smoke_data, tmp_path):
    from picojepa.train.layout import read_classes, read_items

    classes = read_classes(smoke_data)
    train = read_items(smoke_data / "train" / "class.csv", classes)
    test = read_items(smoke_data / "infer" / "class.csv", classes)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    pred, ok = motion_baseline([str(p) for p, _ in train], np.array([y for _, y in train]),
                               [str(p) for p, _ in test] + [str(bad)])
    assert pred.shape == (len(test) + 1,) and pred[-1] == -1 and set(pred[:-1]) <= set(range(len(classes)))
    assert list(ok) == list(range(len(test)))


def test_the_report_warns_first_about_collapse_and_baselines_it_does_not_beat():
    r = {"accuracy": {"general": 40.0, "random_init_probe": 45.0, "motion_energy_baseline": 70.0},
         "pretrain": {"history": [{"target_rank": 3.5}]}, "embed_dim": 96,
         "classes": ["a", "b"], "held_out_videos": 40}
    text = "\n".join(_warnings(r))
    assert "collapsed" in text and "did not help" in text and "frame differencing" in text
    r = {"accuracy": {"general": 80.0, "random_init_probe": 45.0, "motion_energy_baseline": 70.0},
         "pretrain": {"history": [{"target_rank": 40.0}]}, "embed_dim": 96,
         "classes": ["a", "b"], "held_out_videos": 40}
    assert _warnings(r) == []
