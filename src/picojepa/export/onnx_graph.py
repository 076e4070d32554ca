"""PyTorch module -> one self-describing ONNX file, checked by onnx's full checker."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import onnx
import torch

from picojepa.core.bundle import GRAPH_INPUT, LOGITS, PROBS
from picojepa.core.clips import ClipSpec

INPUT, OUTPUTS = GRAPH_INPUT, (LOGITS, PROBS)


def export_graph(module: torch.nn.Module, clip: ClipSpec, path: Path, opset: int,
                 metadata: dict[str, object], outputs: tuple[str, ...] = OUTPUTS) -> Path:
    """Export with the TorchScript-based exporter (opset 17 is kept as asked; the dynamo exporter
    moves to 18 and then fails its own down-conversion), dynamic batch, weights inside the file.
    `outputs` names the module's outputs (a classifier's logits and probs by default)."""
    dummy = torch.zeros(1, *clip.input_shape)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (dummy,), str(path), dynamo=False, opset_version=opset,
                          input_names=[INPUT], output_names=list(outputs),
                          dynamic_axes={INPUT: {0: "batch"}, **{o: {0: "batch"} for o in outputs}})
    model = onnx.load(str(path))
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    onnx.save(model, str(path))
    onnx.checker.check_model(str(path), full_check=True)
    return path
