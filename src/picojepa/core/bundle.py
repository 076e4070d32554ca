"""The deployable bundle: manifest.json + ONNX files, every file checked against its sha256.

manifest.json (format 2):
    format_version: 2
    classes: [str]              class names, in output order
    clip: {frames, size, frame_step, mean, std, seek_mode, placement}   (placement: 'exact' if absent)
    layout: "fused" | "separate" | "grouped"   one graph for all, one per member, or one per
                                group of members sharing an encoder (heterogeneous ensembles)
    graphs: [{file, sha256, bytes, members: [name], variant: "fp32" | "int8"}]
    members: [str]              every member, in output order
    vote_members: [str]         the members that vote (a run's four partial models; every member
                                of a bundle composed from several runs)
    default_vote: "majority" | "soft" | "weighted" | "stacked"   the members' vote when none is asked
                                for (a network of member nodes always votes)
    default_answer: a vote, "general" or "hybrid"   optional (default_vote if absent): what one box
                                answers with when no vote is asked for: a vote of vote_members, the
                                general member alone, or the hybrid (general + motion, soft vote)
                                where it holds those members; export picks what validated best
    vote_weights: {member: float}
    stacking: {members, input: "log_prob", weight: [[float]] (C x M*C), bias: [float] (C),
               fitted_on_videos, l2}   optional: the learned combiner behind `--vote stacked`
    recipe: {...}, versions: {...}
    member_recipes: {member: {...}}   optional: each member's training recipe
    manifest_sha256: str        sha256 of the manifest itself (every other key, canonical JSON):
                                a class list reordered by hand would relabel every answer

A folder holding `INCOMPLETE` is an export's draft that never finished (never verified): refused.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from picojepa.core.errors import BundleError
from picojepa.core.outdir import INCOMPLETE
from picojepa.core.textio import read_json

from .clips import ClipSpec
from .roster import ANSWERS
from .shown import cut, shown
from .vote import VOTES

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
CHECKSUM = "manifest_sha256"
# every graph of a bundle: one input, the normalised clips (B, 3, T, S, S), and two outputs per
# member, (B, members, classes) each
GRAPH_INPUT, LOGITS, PROBS = "clip", "logits", "probs"
LAYOUTS = ("fused", "separate", "grouped")
MEMBER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")  # safe in file names and NATS subjects
REQUIRED = {"format_version": int, "classes": list, "clip": dict, "layout": str, "graphs": list,
            "members": list, "vote_members": list, "default_vote": str, "vote_weights": dict}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _canonical(manifest: dict) -> bytes:
    rest = {k: v for k, v in manifest.items() if k != CHECKSUM}
    return json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def seal(manifest: dict) -> dict:
    """The manifest with its own checksum (what the exporter writes)."""
    return {**{k: v for k, v in manifest.items() if k != CHECKSUM},
            CHECKSUM: hashlib.sha256(_canonical(manifest)).hexdigest()}


@dataclass
class GraphEntry:
    """One graph as the manifest lists it; sha256 and bytes are filled in when the manifest is written."""
    file: str
    members: list[str]
    variant: str = "fp32"
    sha256: str = ""
    bytes: int = 0


@dataclass
class Manifest:
    """manifest.json as the exporter builds it (the keys in this module's docstring); `write`
    fills in each graph's checksum and size and seals it. Readers use `load_bundle`'s `Bundle`."""
    classes: list[str]
    clip: dict
    layout: str
    graphs: list[GraphEntry]
    members: list[str]
    vote_members: list[str]
    vote_weights: dict[str, float]
    recipe: dict = field(default_factory=dict)
    member_recipes: dict[str, dict] = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    opset: int | None = None
    default_vote: str = "majority"
    default_answer: str | None = None  # optional keys: left out of the file where None
    stacking: dict | None = None
    optimised: dict | None = None

    @classmethod
    def of(cls, bundle: "Bundle") -> "Manifest":
        """A loaded bundle's manifest, to derive another from (e.g. a bundle of one of its graphs)."""
        m, graph_keys = bundle.manifest, {f.name for f in fields(GraphEntry)}
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in m.items() if k in known},
                      "graphs": [GraphEntry(**{k: v for k, v in g.items() if k in graph_keys}) for g in m["graphs"]]})

    def graphs_of(self, variant: str) -> list[GraphEntry]:
        return [g for g in self.graphs if g.variant == variant]

    def only(self, file: str) -> "Manifest":
        """The manifest of a bundle holding just graph `file` and its members (no stacking: it
        combines members that are not all there)."""
        g = next(g for g in self.graphs if g.file == file)
        members = list(g.members)
        answer = self.default_answer if self.default_answer in answers(members) else None
        return replace(self, graphs=[g], members=members, vote_members=members, stacking=None, default_answer=answer,
                       layout="fused" if len(members) > 1 else "separate",
                       vote_weights={k: v for k, v in self.vote_weights.items() if k in members},
                       member_recipes={k: v for k, v in self.member_recipes.items() if k in members})

    def to_json(self) -> dict:
        d = {"format_version": FORMAT_VERSION, **asdict(self)}
        return {k: v for k, v in d.items() if v is not None or k not in ("default_answer", "stacking", "optimised", "opset")}

    def write(self, root: Path) -> None:
        """root/manifest.json, with every graph's sha256 and size, sealed by its own checksum."""
        for g in self.graphs:
            f = root / g.file
            g.sha256, g.bytes = sha256_file(f), f.stat().st_size
        (root / MANIFEST).write_text(json.dumps(seal(self.to_json()), indent=1))


@dataclass(frozen=True)
class Graph:
    path: Path
    members: tuple[str, ...]
    variant: str


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: dict
    classes: tuple[str, ...]
    clip: ClipSpec
    graphs: tuple[Graph, ...]

    @property
    def members(self) -> list[str]:
        return list(self.manifest["members"])

    def with_placement(self, placement: str | None) -> "Bundle":
        """This bundle with its clips placed by `placement` ('exact' or 'keyframe'; None: as the
        recipe trained them). A runtime choice: the graphs are the same either way."""
        if placement is None:
            return self
        try:
            return replace(self, clip=replace(self.clip, placement=placement))
        except ValueError as exc:  # e.g. keyframe placement on a bundle that seeks approximately
            raise BundleError(f"{self.root}: {exc}") from None

    @property
    def vote_members(self) -> list[str]:
        return list(self.manifest["vote_members"])

    @property
    def vote_weights(self) -> dict[str, float]:
        """Each voting member's weight in the weighted vote (every one has one: `load_bundle`)."""
        return {m: float(self.manifest["vote_weights"][m]) for m in self.vote_members}

    @property
    def default_vote(self) -> str:
        """The members' vote when none is asked for (what a network of member nodes does)."""
        return self.manifest["default_vote"]

    @property
    def default_answer(self) -> str:
        """What one box answers with when no vote is asked for (a vote, `general` or `hybrid`)."""
        return self.manifest.get("default_answer") or self.default_vote

    @property
    def stacking(self) -> dict | None:
        """The stacked vote's meta-model (weight, bias, the members it combines), if it has one."""
        return self.manifest.get("stacking") or None

    @property
    def checksum(self) -> str:
        """The manifest's own sha256: the bundle's one identity, wherever it is named (the NATS
        subjects and replies of a network of nodes, the MQTT discovery). The manifest lists every
        graph's sha256, so a change to any file of the bundle changes it."""
        return self.manifest.get(CHECKSUM, "")

    @property
    def layout(self) -> str:
        return self.manifest["layout"]

    @property
    def recipe(self) -> dict:
        """The recipe of the bundle's first member, as training wrote it."""
        return self.manifest["recipe"]

    @property
    def member_recipes(self) -> dict[str, dict]:
        """Each member's recipe where the members differ (a heterogeneous bundle), else {}."""
        return self.manifest.get("member_recipes") or {}

    def graphs_of(self, variant: str) -> list[Graph]:
        return [g for g in self.graphs if g.variant == variant]


def answers(members) -> list[str]:
    """What a bundle of these members can answer with: every vote, and the answers of
    `roster.ANSWERS` whose members it holds."""
    return [*VOTES, *(a for a, need in ANSWERS.items() if set(need) <= set(members))]


def _fail(root: Path, reason: str):
    raise BundleError(f"{root}: {reason}")


def _check_stacking(root: Path, manifest: dict) -> None:
    s, c, votes = manifest["stacking"], len(manifest["classes"]), manifest["vote_members"]
    if not isinstance(s, dict) or s.get("input") != "log_prob" or s.get("members") != votes:
        _fail(root, f"{MANIFEST}: 'stacking' must combine the vote_members' log-probabilities")
    try:
        w = np.asarray(s["weight"], dtype=np.float64)
        b = np.asarray(s["bias"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        _fail(root, f"{MANIFEST}: 'stacking' needs numeric 'weight' and 'bias'")
    if w.shape != (c, len(votes) * c) or b.shape != (c,) or not (np.isfinite(w).all() and np.isfinite(b).all()):
        _fail(root, f"{MANIFEST}: 'stacking' weight {w.shape} and bias {b.shape} must be finite, "
                    f"({c}, {len(votes) * c}) and ({c},)")


def _names(root: Path, manifest: dict, key: str, pattern: re.Pattern | None = None) -> None:
    """manifest[key] must be a non-empty list of distinct, non-empty strings (matching `pattern`)."""
    v = manifest[key]
    if not v or not all(isinstance(x, str) and x.strip() and (pattern is None or pattern.match(x))
                        for x in v) or len(set(v)) != len(v):
        _fail(root, f"{MANIFEST}: {key!r} must be a list of distinct non-empty names, got "
                    f"{json.dumps(v)[:80]}")


def _check_names(root: Path, manifest: dict) -> None:
    _names(root, manifest, "classes")
    if len(manifest["classes"]) < 2:
        _fail(root, f"{MANIFEST}: 'classes' needs at least 2 classes")
    _names(root, manifest, "members", MEMBER_NAME)
    _names(root, manifest, "vote_members", MEMBER_NAME)
    w = manifest["vote_weights"]
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0
               for x in w.values()) or (w and not any(w.values())):
        _fail(root, f"{MANIFEST}: 'vote_weights' must be finite numbers >= 0, not all zero")
    if not set(manifest["vote_members"]) <= set(w):
        _fail(root, f"{MANIFEST}: 'vote_weights' must give every voting member a weight")
    if manifest["default_vote"] not in VOTES:
        _fail(root, f"{MANIFEST}: default_vote {shown(manifest['default_vote'])} is none of {', '.join(VOTES)}")
    answer, possible = manifest.get("default_answer", manifest["default_vote"]), answers(manifest["members"])
    if answer not in possible:
        _fail(root, f"{MANIFEST}: default_answer {shown(answer)} is none of {', '.join(possible)}")


def _graphs(root: Path, manifest: dict, verify_hashes: bool) -> list[Graph]:
    """The manifest's graphs, each a file inside the bundle matching its sha256; the fp32 ones
    must cover every member."""
    members = manifest["members"]
    graphs, covered = [], []
    real_root = root.resolve()
    for g in manifest["graphs"]:
        if not isinstance(g, dict) or not {"file", "sha256", "members", "variant"} <= set(g) or not (
                isinstance(g["file"], str) and isinstance(g["sha256"], str) and isinstance(g["variant"], str)
                and isinstance(g["members"], list) and all(isinstance(m, str) for m in g["members"])
                and set(g["members"]) <= set(members)):
            _fail(root, f"{MANIFEST}: each graph needs file, sha256 and variant (strings) and members "
                        "(of the bundle's members)")
        try:  # a NUL byte or a name longer than the file system allows is no path at all
            path = (root / g["file"]).resolve()
            found = path.is_file()
        except (OSError, ValueError) as exc:
            _fail(root, f"{MANIFEST}: graph path {shown(g['file'])} is not a usable path "
                        f"({getattr(exc, 'strerror', None) or exc})")
        if not path.is_relative_to(real_root) or Path(g["file"]).is_absolute():
            _fail(root, f"{MANIFEST}: graph path {shown(g['file'])} escapes the bundle")
        if not found:
            _fail(root, f"{cut(g['file'])}: listed in the manifest but missing")
        if verify_hashes and sha256_file(path) != g["sha256"]:
            _fail(root, f"{g['file']}: sha256 does not match the manifest (file altered or corrupt)")
        graphs.append(Graph(path, tuple(g["members"]), g["variant"]))
        if g["variant"] == "fp32":
            covered += g["members"]
    if sorted(covered) != sorted(members):
        _fail(root, f"{MANIFEST}: fp32 graphs cover {sorted(covered)}, members are {sorted(members)}")
    return graphs


def load_bundle(root: str | Path, verify_hashes: bool = True, draft: bool = False) -> Bundle:
    """Read and validate a bundle; every path must stay inside it, every file match its sha256,
    the manifest its own checksum. `draft` (the exporter only) accepts its unfinished draft."""
    root = Path(root)
    mpath = root / MANIFEST
    if not root.is_dir():
        _fail(root, "no such bundle directory")
    if (root / INCOMPLETE).exists() and not draft:
        _fail(root, "an export that never finished left this folder (never verified); export again")
    if not mpath.is_file():
        _fail(root, f"no {MANIFEST}: not a picojepa bundle")
    manifest = read_json(mpath, BundleError, "bundle manifest")
    if not isinstance(manifest, dict):
        _fail(root, f"{MANIFEST} must hold a JSON object")
    if verify_hashes and manifest.get("format_version") == FORMAT_VERSION:
        if not isinstance(manifest.get(CHECKSUM), str):
            _fail(root, f"{MANIFEST}: no {CHECKSUM}; export the bundle again")
        if hashlib.sha256(_canonical(manifest)).hexdigest() != manifest[CHECKSUM]:
            _fail(root, f"{MANIFEST}: its checksum does not match (edited or corrupt); export again")
    for key, tp in REQUIRED.items():
        if key not in manifest:
            _fail(root, f"{MANIFEST}: missing key {key!r}")
        if not isinstance(manifest[key], tp):
            _fail(root, f"{MANIFEST}: {key!r} must be a {tp.__name__}")
    if manifest["format_version"] != FORMAT_VERSION:
        _fail(root, f"{MANIFEST}: format_version {manifest['format_version']} is not supported "
                    f"(this runtime reads {FORMAT_VERSION})")
    try:
        clip = ClipSpec.from_dict(manifest["clip"])
    except (KeyError, TypeError, ValueError) as exc:
        _fail(root, f"{MANIFEST}: bad clip spec ({exc})")
    _check_names(root, manifest)
    members = manifest["members"]
    if not set(manifest["vote_members"]) <= set(members) or not manifest["vote_members"]:
        _fail(root, f"{MANIFEST}: vote_members must be a non-empty subset of members")
    if "stacking" in manifest:
        _check_stacking(root, manifest)
    if manifest["layout"] not in LAYOUTS:
        _fail(root, f"{MANIFEST}: layout {manifest['layout']!r} is none of {', '.join(LAYOUTS)}")
    graphs = _graphs(root, manifest, verify_hashes)
    return Bundle(root, manifest, tuple(manifest["classes"]), clip, tuple(graphs))
