"""--folds K: every labelled video held out exactly once, each fold a full run, the spread on top."""
import json
import subprocess
import sys

import pytest

from picojepa.train.folds import fold_roots
from picojepa.train.layout import check_layout, read_classes, read_items

from conftest import REPO


def test_every_labelled_video_is_held_out_exactly_once_and_never_trained_on_there(smoke_data, tmp_path):
    classes = read_classes(smoke_data)
    labelled = read_items(smoke_data / "train" / "class.csv", classes) + \
        read_items(smoke_data / "infer" / "class.csv", classes)
    roots = fold_roots(smoke_data, tmp_path, 3, seed=0)
    held, per_class = [], []
    for root in roots:
        check_layout(root)
        infer = {p.resolve() for p, _ in read_items(root / "infer" / "class.csv", classes)}
        train = {p.resolve() for p, _ in read_items(root / "train" / "train.csv")}
        assert not infer & train, "a held-out video is pre-trained or trained on in its fold"
        held += sorted(infer)
        per_class.append(sorted(y for _, y in read_items(root / "infer" / "class.csv", classes)))
    assert sorted(held) == sorted(p.resolve() for p, _ in labelled)
    assert all(set(c) == set(range(len(classes))) for c in per_class), "folds are stratified"
    assert fold_roots(smoke_data, tmp_path, 3, seed=0) == roots  # made once; a resume keeps them


def test_too_few_videos_per_class_for_the_folds_is_one_line(smoke_data, tmp_path):
    from picojepa.core.errors import DataLayoutError

    with pytest.raises(DataLayoutError, match="--folds 20 needs at least 20 labelled videos per class"):
        fold_roots(smoke_data, tmp_path, 20, seed=0)


@pytest.mark.slow
def test_train_all_with_folds_writes_each_fold_and_the_spread(smoke_data, tmp_path):
    out = tmp_path / "cv"
    done = subprocess.run([sys.executable, "-m", "picojepa.train.cli", "all", "--config",
                           str(REPO / "configs" / "smoke.yaml"), "--data", str(smoke_data), "--out", str(out),
                           "--folds", "2", "--no-progress"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    r = json.loads((out / "report.json").read_text())
    assert r["folds"] == 2 and sorted(r["per_run"]) == ["fold-0", "fold-1"]
    assert r["held_out_videos"] == 30 and "2-fold cross-validation" in (out / "report.md").read_text()
    assert (out / "fold-1" / "members" / "general.pt").exists()
