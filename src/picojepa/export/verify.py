"""onnxruntime against PyTorch on real decoded clips: the check every export must pass."""
from __future__ import annotations

import time

import numpy as np
import torch

from picojepa.core.bundle import LOGITS
from picojepa.core.vote import majority, vote_counts

from .errors import ExportMismatchError


def torch_logits(modules: list[tuple[torch.nn.Module, list[int]]], clips: np.ndarray,
                 members: int) -> np.ndarray:
    """Logits (M, B, C) from the PyTorch graphs, in member order."""
    out = None
    with torch.no_grad():
        for module, idx in modules:
            logits = module(torch.from_numpy(clips))[0].numpy()  # (B, m, C)
            if out is None:
                out = np.zeros((members, clips.shape[0], logits.shape[-1]), np.float32)
            out[idx] = logits.transpose(1, 0, 2)
    return out


def ort_logits(ensemble, clips: np.ndarray) -> np.ndarray:
    """onnxruntime's logits of every member, (M, B, C), as the runtime computes them."""
    return ensemble.member_outputs(clips, LOGITS)


def decisive(logits: np.ndarray, tolerance: float | None) -> np.ndarray:
    """Which clips (rows of (B, C) logits) have a top class ahead of the next by more than twice
    `tolerance`: only there can a difference within the tolerance not change the top-1 (all, with
    no tolerance)."""
    if tolerance is None or logits.shape[-1] < 2:
        return np.ones(logits.shape[0], bool)
    top2 = np.sort(logits, axis=-1)[:, -2:]
    return top2[:, 1] - top2[:, 0] > 2 * tolerance


def compare(ref: np.ndarray, got: np.ndarray, members: list[str], vote_index: list[int],
            tolerance: float | None) -> dict:
    """Per member and for the vote: max |logit difference| and top-1 agreement. With a tolerance,
    agreement is counted on the decisive clips (`decisive`): a nearer tie may flip within the
    tolerance without any mismatch; `near_ties` says how many clips that left out. The vote is
    compared on the clips where every voter is decisive and the votes are not tied between classes
    (`vote_near_ties` counts the others)."""
    res = {"tolerance": tolerance, "clips": int(ref.shape[1]), "members": {}}
    sure = np.stack([decisive(r, tolerance) for r in ref])  # (M, B)
    for i, m in enumerate(members):
        agree = ref[i].argmax(-1) == got[i].argmax(-1)
        res["members"][m] = {
            "max_abs_logit_diff": float(np.abs(ref[i] - got[i]).max()),
            "top1_agreement": float(agree[sure[i]].mean()) if sure[i].any() else 1.0,
            "near_ties": int((~sure[i]).sum()),
        }
    a, b = majority(_softmax(ref[vote_index])), majority(_softmax(got[vote_index]))
    voted = sure[vote_index].all(0) & ~_count_tie(ref[vote_index])  # a tie of votes goes by summed probability
    res["vote_majority_agreement"] = float((a == b)[voted].mean()) if voted.any() else 1.0
    res["vote_near_ties"] = int((~voted).sum())
    res["max_abs_logit_diff"] = max(v["max_abs_logit_diff"] for v in res["members"].values())
    res["top1_agreement"] = min(v["top1_agreement"] for v in res["members"].values())
    return res


def _count_tie(logits: np.ndarray) -> np.ndarray:
    """Per clip of (V, B, C) voters' logits: whether two classes share the most votes (the majority
    vote then breaks the tie by summed probability, which moves with the logits)."""
    votes = vote_counts(logits)
    return (votes == votes.max(-1, keepdims=True)).sum(-1) > 1


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def passes(result: dict) -> bool:
    """A `compare` result within its tolerance, with every top-1 and the vote agreeing."""
    return (result["max_abs_logit_diff"] <= result["tolerance"] and result["top1_agreement"] == 1.0
            and result["vote_majority_agreement"] == 1.0)


def check(result: dict, what: str) -> None:
    tol = result["tolerance"]
    if not passes(result):
        raise ExportMismatchError(
            f"{what}: onnxruntime differs from PyTorch: max |dlogit| "
            f"{result['max_abs_logit_diff']:.3g} (tolerance {tol:g}), top-1 agreement "
            f"{result['top1_agreement']:.3f}, vote agreement {result['vote_majority_agreement']:.3f}")


def median_latencies_ms(ensembles: list, clip: np.ndarray, repeats: int = 21) -> list[float]:
    """Median latency of each ensemble on `clip`, measured interleaved (A, B, A, B, ...) so that
    a slow moment of the machine costs every ensemble alike."""
    for ens in ensembles:
        ens.member_probs(clip)  # warm-up
    times: list[list[float]] = [[] for _ in ensembles]
    for _ in range(repeats):
        for ens, t in zip(ensembles, times):
            t0 = time.perf_counter()
            ens.member_probs(clip)
            t.append((time.perf_counter() - t0) * 1e3)
    return [float(np.median(t)) for t in times]
