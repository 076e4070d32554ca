"""Facts about the machine a report was measured on, and its measured fp32 matrix-multiply peak."""
from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .stats import repeat_ms, summarize

PACKAGES = ("picojepa", "torch", "torchcodec", "onnx", "onnxruntime", "onnxruntime-gpu", "numpy")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def facts(threads: int) -> dict:
    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = version(p)
        except PackageNotFoundError:
            pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "usable_cpus": usable,
            "threads": threads, "python": platform.python_version(), "platform": platform.platform(),
            "versions": versions, "providers": ort.get_available_providers(), "gpu": gpu_name()}


def gpu_name() -> str | None:
    try:
        import torch  # heavy: off `picojepa-bench --help`'s path

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # a broken CUDA install must not stop a CPU benchmark
        return None


def matmul_graph(n: int) -> bytes:
    """An ONNX graph computing A @ B for fp32 (n, n) inputs."""
    from onnx import TensorProto, helper  # heavy (~1 s): only to build the peak's graph

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])
    c = helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul", [a, b], [c])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def matmul_peak(threads: int, sizes: tuple[int, ...] = (256, 512, 1024), repeats: int = 10) -> dict:
    """fp32 GFLOP/s of onnxruntime's MatMul (the library and thread count the model runs with);
    the best median over a few square sizes is the machine's measured peak."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    rng = np.random.default_rng(0)
    by_size = {}
    for n in sizes:
        sess = ort.InferenceSession(matmul_graph(n), opts, providers=["CPUExecutionProvider"])
        feed = {"a": rng.standard_normal((n, n), np.float32), "b": rng.standard_normal((n, n), np.float32)}
        t = summarize(repeat_ms(lambda: sess.run(None, feed), repeats, warmup=3))
        by_size[n] = 2 * n ** 3 / (t["p50"] * 1e-3) / 1e9
    return {"gflops": max(by_size.values()), "by_size": by_size,
            "method": "median of onnxruntime CPU MatMul on square fp32 matrices, best size"}
