"""The weighted vote's weights: one rule (`core.vote.vote_weights`), for a run's report, its
bundle and a heterogeneous ensemble alike, defined where every member validates at 0 %."""
import json
import shutil

import pytest

from picojepa.core import vote
from picojepa.core.roster import VOTE_MEMBERS
from picojepa.core.rundir import RunDir
from picojepa.train import checkpoint


def test_bundle_and_ensembles_take_their_weights_from_the_one_rule():
    from picojepa.export import bundle
    from picojepa.train import hetero

    assert bundle.vote_weights is vote.vote_weights and hetero.vote_weights is vote.vote_weights


@pytest.fixture(scope="module")
def zero_run(smoke_run, tmp_path_factory):
    """The smoke run, its voting members' validation accuracy set to 0 (what a fold of a real set gave)."""
    run = tmp_path_factory.mktemp("zero") / "run"
    shutil.copytree(smoke_run[0], run, symlinks=True)
    for m in VOTE_MEMBERS:
        state = checkpoint.load(RunDir(run).member(m), kind="member")
        checkpoint.save({**state, "val_accuracy": 0.0}, RunDir(run).member(m))
    return run


def test_a_run_whose_voting_members_all_validate_at_zero_is_evaluated(zero_run, smoke_recipe, smoke_data):
    from picojepa.train.evaluate import evaluate

    report = evaluate(smoke_recipe, smoke_data, zero_run, show_progress=False)
    assert report.validation_accuracy and all(report.validation_accuracy[m] == 0.0 for m in VOTE_MEMBERS)
    assert report.accuracy["vote_weighted"] == report.accuracy["vote_soft"], "equal weights: the soft vote"


def test_a_run_whose_voting_members_all_validate_at_zero_exports_equal_weights(zero_run, tmp_path):
    from picojepa.export.bundle import export_bundle

    export_bundle(zero_run, tmp_path / "bundle")
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert list(manifest["vote_weights"].values()) == [1.0] * len(VOTE_MEMBERS)
