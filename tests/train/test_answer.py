"""The bundle's default answer is the one that validated best, on videos none of its members saw."""
import json

import numpy as np

from picojepa.core.bundle import load_bundle
from picojepa.core.rundir import RunDir
from picojepa.export.bundle import defaults
from picojepa.runtime.ensemble import Ensemble
from picojepa.train.answer import CANDIDATES, FALLBACK, choose, score_candidates


def test_the_general_member_answers_unless_another_validated_better_beyond_noise():
    # 10 points on 20 videos is within noise: the general member, trained on every labelled video
    assert choose({"majority": (80.0, 20), "general": (70.0, 20)}).chosen == "general"
    assert choose({"majority": (60.0, 20), "general": (70.0, 20), "hybrid": (65.0, 20)}).chosen == "general"
    # 25 points on 100 videos each is not; the best of those that clear the margin
    assert choose({"majority": (95.0, 100), "general": (70.0, 100), "soft": (90.0, 100)}).chosen == "majority"
    # no general score: the best, ties to the fewer members; a candidate scored on no video is none
    assert choose({"soft": (70.0, 20), "hybrid": (70.0, 20)}).chosen == "hybrid"
    assert choose({"general": (100.0, 0), "soft": (50.0, 10)}).chosen == "soft"
    assert choose({}).chosen == FALLBACK


def test_each_candidate_is_scored_only_on_videos_none_of_its_members_trained_on():
    asked = []
    rng = np.random.default_rng(0)

    def probs_on(members, paths):
        asked.append((tuple(members), list(paths)))
        return {m: rng.dirichlet(np.ones(3), len(paths)) for m in members}, np.zeros(len(paths), dtype=int)

    val = {"general": ["g1", "g2", "shared"], "1": ["a"], "2": ["b"], "3": ["c"], "4": ["d"],
           "motion": ["shared", "m1"]}
    choice = score_candidates(probs_on, val, [1.0] * 4)
    assert set(choice.accuracy) == set(CANDIDATES)
    assert asked[0] == (("1", "2", "3", "4"), ["a", "b", "c", "d"])  # the partials' validation videos
    assert asked[1] == (("general",), ["g1", "g2", "shared"])
    assert asked[2] == (("general", "motion"), ["shared"])  # what both kept for validation
    assert choice.videos == {"general": 3, "hybrid": 1, "majority": 4, "soft": 4, "weighted": 4}


def test_export_gives_the_answer_the_rule_picks_among_those_the_bundle_can_give():
    choice = {"accuracy": {"general": 60.0, "hybrid": 95.0, "majority": 90.0, "soft": 65.0, "weighted": 65.0},
              "videos": {"general": 100, "hybrid": 100, "majority": 100, "soft": 100, "weighted": 100},
              "chosen": "hybrid"}
    partials = ["1", "2", "3", "4"]
    assert defaults(choice, ["general", *partials, "motion"], partials) == ("majority", "hybrid")
    assert defaults(choice, ["general", *partials], partials) == ("majority", "majority")  # no motion member
    # voters other than the run's partials: the partials' vote scores say nothing of them
    assert defaults(choice, ["general", "motion"], ["general", "motion"]) == ("majority", "hybrid")
    assert defaults(choice, ["general"], ["general"]) == ("majority", "general")
    assert defaults(None, ["general", *partials], partials) == ("majority", None)


def test_the_smoke_bundle_answers_by_default_with_what_validated_best(smoke_run, smoke_bundle):
    run, report = smoke_run
    kept = RunDir(run).answer_choice()
    assert kept == report.answer and kept["chosen"] in CANDIDATES
    assert kept["chosen"] == choose({k: (v, kept["videos"][k]) for k, v in kept["accuracy"].items()}).chosen
    bundle = load_bundle(smoke_bundle)
    want = defaults(kept, bundle.members, bundle.vote_members)
    assert (bundle.default_vote, bundle.default_answer) == (want[0], want[1] or want[0])
    with Ensemble.load(smoke_bundle, provider="cpu") as ens:
        video = report.predictions["paths"][0]
        p = ens.predict(video)
        assert p.vote == bundle.default_answer
        for other in ("majority", "general"):  # the others one flag away
            assert ens.predict(video, vote=other).vote == other


def test_the_general_answer_is_the_general_members_own(smoke_bundle):
    with Ensemble.load(smoke_bundle, provider="cpu") as ens:
        video = json.loads((smoke_bundle / "verification.json").read_text())["videos"][0]
        p = ens.predict(video, vote="general")
        assert p.label == p.members["general"].label
        assert abs(p.confidence - p.members["general"].probability) < 1e-6


def test_a_network_of_member_nodes_votes_by_default_and_one_box_gives_the_default_answer(smoke_bundle):
    from picojepa.runtime.ensemble import EnsembleBase, resolve_vote
    from picojepa.runtime.net.network import NetworkEnsemble

    bundle = load_bundle(smoke_bundle)
    assert resolve_vote(bundle, None) == bundle.default_answer
    assert resolve_vote(bundle, None, alone=False) == bundle.default_vote
    assert EnsembleBase.answers_alone and not NetworkEnsemble.answers_alone
