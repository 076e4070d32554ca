"""Which clips to label next: the ones the members disagree on come first, then the ones the
answer is least sure of; the measurement runs on cached features."""
import numpy as np
import torch

from picojepa.train.config import ClassifyConfig
from picojepa.train.features import Features
from picojepa.train.label_next import STRATEGIES, Study, priority, rank, study, unlabelled_videos, vote_entropy


def _probs(tops: list[list[int]], classes: int = 3, p: float = 0.8) -> np.ndarray:
    """(M, N, C): member m gives clip n its class tops[n][m] with probability p."""
    m, n = len(tops[0]), len(tops)
    out = np.full((m, n, classes), (1 - p) / (classes - 1))
    for j, row in enumerate(tops):
        for i, c in enumerate(row):
            out[i, j, c] = p
    return out


def test_the_ranking_puts_the_clips_the_members_disagree_on_first():
    members = _probs([[0, 0, 0, 0], [0, 1, 2, 0], [0, 0, 1, 1], [1, 1, 1, 2]])
    answer = members.mean(0)
    assert rank(members, answer).tolist() == [1, 2, 3, 0]
    ent = vote_entropy(members)
    assert ent[0] == 0 and ent[1] > ent[2] > ent[3] > 0 and ent.max() <= 1


def test_among_clips_the_members_agree_on_the_least_sure_answer_comes_first():
    members = _probs([[0, 0, 0, 0]] * 3)
    answer = np.array([[0.9, 0.05, 0.05], [0.4, 0.3, 0.3], [0.6, 0.2, 0.2]])
    assert rank(members, answer).tolist() == [1, 2, 0]
    assert np.allclose(priority(members, answer), 1 - answer.max(-1))


def test_unlabelled_videos_are_those_only_pretraining_lists_each_once(tmp_path):
    for d in ("train/a", "train/unlabelled"):
        (tmp_path / d).mkdir(parents=True)
    for f in ("train/a/x.mp4", "train/unlabelled/u.mp4", "train/unlabelled/v.mp4"):
        (tmp_path / f).write_bytes(b"")
    (tmp_path / "train" / "class.csv").write_text("video_name,label\na/x.mp4,a\n")
    (tmp_path / "train" / "train.csv").write_text("video_name\na/x.mp4\nunlabelled/u.mp4\nunlabelled/u.mp4\n"
                                                  "unlabelled/v.mp4\n")
    assert [p.name for p in unlabelled_videos(tmp_path)] == ["u.mp4", "v.mp4"]


def test_the_study_gives_each_strategy_an_accuracy_per_step_and_seed():
    rng = np.random.default_rng(0)

    def features(n):
        y = rng.integers(0, 3, n)
        x = rng.normal(size=(n, 1, 6)) + 2 * np.eye(3, 6)[y][:, None]
        return Features(torch.tensor(x, dtype=torch.float32), torch.tensor(y), [str(i) for i in range(n)], [])

    got = study(features(40), features(30), 3, ClassifyConfig(epochs=3, batch_size=8, lr=1e-2, warmup_epochs=0.5),
                Study(start=2, k=4, steps=2, seeds=(0, 1)))
    assert set(got) == set(STRATEGIES)
    assert all(a.shape == (2, 3) and ((0 <= a) & (a <= 100)).all() for a in got.values())
    assert np.allclose(got["random"][:, 0], got["ranked"][:, 0])  # the same start on each seed


def test_the_study_tool_measures_a_run_from_its_cached_features(smoke_run):
    import json
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(__file__).resolve().parents[2] / "tools" / "label_next_study.py"
    r = subprocess.run([sys.executable, str(tool), str(smoke_run[0]), "--start", "2", "--k", "2", "--steps", "1",
                        "--seeds", "0,1", "--epochs", "2", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)["runs"][0]
    assert got["labelled"] == [6, 8] and set(got["accuracy"]) == set(STRATEGIES)
    assert all(np.asarray(a).shape == (2, 2) for a in got["accuracy"].values())
    assert "| labelled | random | least_confident | ranked |" in r.stderr
