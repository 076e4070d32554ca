"""What one benchmark run is: its settings (`BenchConfig`) and the state its stages share
(`BenchRun`), with the small rules the stages have in common (which members vote, which videos
are labelled, which decoding files are the ~10 s clips)."""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from picojepa.core.bundle import Bundle, load_bundle
from picojepa.core.roster import VOTE_MEMBERS
from picojepa.core.rundir import RunDir
from picojepa.runtime.decoding import decode_clips

from . import machine
from .errors import BenchError


@dataclass(frozen=True)
class BenchConfig:
    """What one `picojepa-bench` run measures, and how hard."""

    bundle: Path
    run_dir: Path | None
    videos: list[str]
    decode_videos: list[Path]
    out: Path
    rounds: int = 5
    process_per_model_videos: int = 3
    many: int = 1000
    threads: int = 0
    batch: int = 8
    skip: tuple[str, ...] = ()
    progress: bool = True
    hetero: Path | None = None  # a heterogeneous bundle to set beside the fused one


@dataclass
class BenchRun:
    """The state the stages share: the bundle, a scratch folder, the videos that decoded, and
    the result being written."""

    cfg: BenchConfig
    bundle: Bundle
    tmp: Path
    result: dict
    bad: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, cfg: BenchConfig) -> "BenchRun":
        import torch  # heavy: off `picojepa-bench --help`'s path (the CLI imports this module)

        b = load_bundle(cfg.bundle)
        if b.layout != "fused":
            raise BenchError(f"{cfg.bundle}: the benchmark compares against a fused bundle; this one is "
                             f"{b.layout!r} (export without --layout separate)")
        if cfg.run_dir is not None and not RunDir(cfg.run_dir).members.is_dir():
            raise BenchError(f"{cfg.run_dir}: not a training run (no members/ folder)")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        cfg.out.mkdir(parents=True, exist_ok=True)
        result = {"machine": machine.facts(cfg.threads or torch.get_num_threads()),
                  "bundle": str(cfg.bundle), "run": str(cfg.run_dir) if cfg.run_dir else None,
                  "videos": cfg.videos, "rounds": cfg.rounds,
                  "when": time.strftime("%Y-%m-%d %H:%M:%S"), "skipped": {}}
        return cls(cfg, b, Path(tempfile.mkdtemp(prefix="picojepa-bench-")), result)

    def decode(self, video: str):
        return decode_clips(video, self.bundle.clip)

    @property
    def ok_videos(self) -> list[str]:
        return [v for v in self.cfg.videos if v not in self.bad]

    def skip_reason(self, stage: str) -> str | None:
        """Why `stage` does not run in this benchmark (None: it runs)."""
        cfg = self.cfg
        if stage in cfg.skip:
            return "--skip"
        if stage in ("process_per_model", "training") and cfg.run_dir is None:
            return "needs --run (the training run's checkpoints)"
        if stage == "process_per_model" and not cfg.process_per_model_videos:
            return "--process-per-model-videos 0"
        if stage in ("decoding", "decode_share") and not cfg.decode_videos:
            return "no decoding videos"
        if stage == "hetero" and cfg.hetero is None:
            return "needs --hetero BUNDLE (a heterogeneous ensemble's bundle)"
        if stage == "long_batch" and not cfg.many:
            return "--many 0"
        if stage == "placement_accuracy" and not labelled(self.ok_videos, self.bundle.classes):
            return "the videos' folders are not the bundle's class names (no labels to score)"
        return None


def labelled(videos: list[str], classes) -> bool:
    return bool(videos) and all(Path(v).parent.name in classes for v in videos)


def vote_members() -> list[str]:
    return list(VOTE_MEMBERS)


def ten_second_clips(files: list[Path]) -> list[Path]:
    """The decoding set's ~10 s, ~340x256 clips that the decode-share target is about (all of
    its files when none of them is there)."""
    ten = [p for p in files if p.name in ("test__mmaction2-tests.mp4", "video3__pytorch-android-demo.mp4")]
    return ten or list(files)
