"""onnxruntime sessions, with provider choice that never silently falls back, and their graphs
checked against the bundle (`check_graph_io`)."""
from __future__ import annotations

from pathlib import Path

from picojepa.core.bundle import GRAPH_INPUT, LOGITS, PROBS, Bundle
from picojepa.core.console import one_line
from picojepa.core.errors import BundleError, PicoJepaError
from picojepa.core.shown import shown

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
SPINNING = "session.intra_op.allow_spinning"  # onnxruntime's session option


class ProviderError(PicoJepaError, RuntimeError):
    """The asked-for execution provider is not usable here."""


def _ort():
    try:
        import onnxruntime  # the extra `cpu` or `gpu`: the commands' --help works without either
    except ImportError:
        raise ProviderError("onnxruntime is not installed: pip install 'picojepa[cpu]' (or [gpu] for CUDA), "
                            "or make install") from None
    return onnxruntime


def make_session(path: Path, provider: str, threads: int = 0, spinning: bool = False):
    """An InferenceSession on `provider` ('cpu', 'cuda' or 'auto'); returns (session, used, note).
    `spinning` lets onnxruntime's pool threads spin between runs (its own default; off here, see
    below; `benchmarks.spinning` measures both).

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
    # onnxruntime's pool threads spin after each run, waiting for the next: CPU that the decoding
    # beside inference (prefetch, camera readers) needs. Off, the demo's files cost a third less
    # CPU in the same wall time (docs/results.md, "Motion gate and deblocking skip", with camera
    # streams)
    opts.add_session_config_entry(SPINNING, "1" if spinning else "0")
    if threads:
        opts.intra_op_num_threads = threads
    chain = [PROVIDERS["cuda"], PROVIDERS["cpu"]] if want_cuda else [PROVIDERS["cpu"]]
    try:
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=chain)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise BundleError(f"{path}: onnxruntime cannot load it "
                          f"({one_line(exc, 200)})") from None
    got = sess.get_providers()
    note = ""
    if want_cuda and PROVIDERS["cuda"] not in got:
        if provider == "cuda":
            raise ProviderError("--provider cuda: the CUDA provider failed to start (CUDA or "
                                "cuDNN libraries missing?); not running on CPU silently")
        note = "CUDA provider present but not usable (libraries missing?): running on CPU"
    used = "cuda" if PROVIDERS["cuda"] in got else "cpu"
    return sess, used, note


def check_graph_io(sess, path: Path, bundle: Bundle, members: int) -> None:
    """A BundleError unless the graph takes the bundle's clips alone, as float32, and returns its
    `members` members' probabilities over the bundle's classes, (batch, members, classes)."""
    inputs = {i.name: i for i in sess.get_inputs()}
    outputs = {o.name: o for o in sess.get_outputs()}
    if set(inputs) != {GRAPH_INPUT} or not {LOGITS, PROBS} <= set(outputs):
        raise BundleError(f"{path}: a bundle graph takes {GRAPH_INPUT!r} alone and gives {LOGITS!r} and "
                          f"{PROBS!r}; this one takes {shown(sorted(inputs))} and gives {shown(sorted(outputs))}")
    shape, want = inputs[GRAPH_INPUT].shape, list(bundle.clip.input_shape)
    if len(shape) != 5 or [s if isinstance(s, int) else None for s in shape[1:]] != want:
        raise BundleError(f"{path}: model input {shape} does not match the clip spec "
                          f"(batch, {', '.join(map(str, want))})")
    kinds = {n: x.type for n, x in [(GRAPH_INPUT, inputs[GRAPH_INPUT]), *((o, outputs[o]) for o in (LOGITS, PROBS))]}
    if any(t != "tensor(float)" for t in kinds.values()):
        raise BundleError(f"{path}: a bundle graph's {GRAPH_INPUT}, {LOGITS} and {PROBS} are float32 tensors; "
                          f"this one's are {', '.join(f'{n} {t}' for n, t in kinds.items())}")
    for name in (LOGITS, PROBS):
        out = outputs[name].shape
        if len(out) != 3 or out[1] not in (members, None) and not isinstance(out[1], str):
            raise BundleError(f"{path}: output {name!r} {out} is not (batch, {members} members, classes)")
        if out[-1] != len(bundle.classes):
            raise BundleError(f"{path}: model has {out[-1]} classes, manifest {len(bundle.classes)}")
