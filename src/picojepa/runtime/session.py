"""onnxruntime sessions, with provider choice that never silently falls back."""
from __future__ import annotations

from pathlib import Path

from picojepa.core.errors import BundleError, PicoJepaError

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class ProviderError(PicoJepaError, RuntimeError):
    """The asked-for execution provider is not usable here."""


def _ort():
    try:
        import onnxruntime  # the extra `cpu` or `gpu`: the commands' --help works without either
    except ImportError:
        raise ProviderError("onnxruntime is not installed: pip install 'picojepa[cpu]' (or [gpu] for CUDA), "
                            "or make install") from None
    return onnxruntime


def make_session(path: Path, provider: str, threads: int = 0):
    """An InferenceSession on `provider` ('cpu', 'cuda' or 'auto'); returns (session, used, note).

    onnxruntime falls back to CPU when the CUDA libraries are missing, logging only a warning:
    the providers the session really got are checked, and 'cuda' that ends on CPU is an error.
    """
    if provider not in ("auto", "cpu", "cuda"):
        raise ProviderError(f"unknown provider {provider!r}; choose auto, cpu or cuda")
    ort = _ort()
    available = ort.get_available_providers()
    want_cuda = provider == "cuda" or (provider == "auto" and PROVIDERS["cuda"] in available)
    if provider == "cuda" and PROVIDERS["cuda"] not in available:
        raise ProviderError("--provider cuda: this onnxruntime has no CUDA provider "
                            "(install the GPU build: make install ORT=gpu)")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    chain = [PROVIDERS["cuda"], PROVIDERS["cpu"]] if want_cuda else [PROVIDERS["cpu"]]
    try:
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=chain)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise BundleError(f"{path}: onnxruntime cannot load it "
                          f"({' '.join(str(exc).split())[:200]})") from None
    got = sess.get_providers()
    note = ""
    if want_cuda and PROVIDERS["cuda"] not in got:
        if provider == "cuda":
            raise ProviderError("--provider cuda: the CUDA provider failed to start (CUDA or "
                                "cuDNN libraries missing?); not running on CPU silently")
        note = "CUDA provider present but not usable (libraries missing?): running on CPU"
    used = "cuda" if PROVIDERS["cuda"] in got else "cpu"
    return sess, used, note
