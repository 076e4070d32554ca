"""The ensemble's shape, owned here and asked for everywhere else: the general member trained
on every labelled video, the partial members each trained on a disjoint quarter (the paper's
"tiny" models), which of them vote, and the names the reports give them."""
from __future__ import annotations

GENERAL = "general"
PARTS = 4
PARTIALS = tuple(str(k) for k in range(1, PARTS + 1))
MEMBERS = (GENERAL, *PARTIALS)
VOTE_MEMBERS = PARTIALS  # the paper's ensemble: the partial models vote, the general one is its rival
# a member that is not a neural network: a linear head on the clip's frame-differencing numbers,
# trained beside the others in every run; it votes with the general model in the hybrid vote
# (`picojepa-export RUN --members general,motion`)
MOTION = "motion"
HYBRID = (GENERAL, MOTION)
# what a bundle may answer with besides a vote of its voting members: the general member alone,
# and the hybrid (the soft vote of the general and the motion member), where it holds them
ANSWERS = {GENERAL: (GENERAL,), "hybrid": HYBRID}


def report_key(member: str) -> str:
    """The member's column in report.json/report.md: 'general', 'partial_<k>' or 'motion_member'."""
    return member if member == GENERAL else "motion_member" if member == MOTION else f"partial_{member}"
