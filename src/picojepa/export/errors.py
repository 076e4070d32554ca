"""Errors of the export stage."""
from picojepa.core.errors import PicoJepaError


class ExportError(PicoJepaError, ValueError):
    """The checkpoints cannot be exported as asked (unknown member, mismatched classes, ...)."""


class ExportMismatchError(ExportError):
    """onnxruntime's outputs differ from PyTorch's beyond the tolerance."""
