"""Typed settings of one export, frozen like the training recipe's: what to export, how closely
each graph must agree with PyTorch, and when a variant pays enough to ship."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import ExportError


@dataclass(frozen=True)
class ExportConfig:
    # 'auto' fuses members that share one encoder into one graph (one encoder pass for all
    # heads); 'separate' writes one graph per member (to compare, or to ship them apart)
    layout: Literal["auto", "separate"] = "auto"
    opset: int = 17
    tolerance: float = 1e-4  # max |logit difference| of an fp32 graph against PyTorch
    fp16_tolerance: float = 1e-2  # the same for fp16 weights and activations
    max_verify: int = 24  # held-out videos verified on (besides any given)
    fp16: bool = False
    int8: bool = False
    optimise: bool = True  # try onnxruntime's transformer optimiser on the fp32 graphs
    # a variant ships only when it pays: the optimised graph at least this much faster, int8
    # this much faster and losing at most this many points of vote accuracy
    optimiser_min_speedup: float = 1.03
    int8_min_speedup: float = 1.1
    int8_max_accuracy_loss: float = 1.0

    def __post_init__(self):
        if self.layout not in ("auto", "separate"):
            raise ExportError(f"layout must be 'auto' or 'separate', got {self.layout!r}")
        if not 13 <= self.opset <= 21:
            raise ExportError(f"opset must be in 13..21, got {self.opset}")
        if self.tolerance <= 0 or self.fp16_tolerance <= 0:
            raise ExportError("tolerances must be positive")
        if self.max_verify < 0:
            raise ExportError(f"max_verify must be >= 0, got {self.max_verify}")
