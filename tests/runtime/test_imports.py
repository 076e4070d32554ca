"""The runtime stays lean: it never imports training or export code, nor torch.nn."""
import ast
import subprocess
import sys
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[2] / "src" / "picojepa" / "runtime"
FORBIDDEN = ("picojepa.train", "picojepa.export", "torch.nn", "torch", "onnx", "onnxscript",
             "matplotlib", "sklearn")


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: stays inside picojepa.runtime
                continue
            yield node.module or ""
            if node.module == "torch":
                yield from (f"torch.{a.name}" for a in node.names)


def test_runtime_sources_import_no_training_export_or_torch_code():
    offenders, sources = [], sorted(RUNTIME.glob("*.py"))
    assert len(sources) > 3, f"no runtime sources found under {RUNTIME}"
    for py in sources:
        for name in _imports(py):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
                offenders.append(f"{py.name}: {name}")
    assert not offenders, offenders


def test_importing_the_runtime_loads_no_training_export_or_torch_module():
    modules = sorted(f"picojepa.runtime.{p.stem}" for p in RUNTIME.glob("*.py") if p.stem != "__init__")
    assert "picojepa.runtime.ensemble" in modules and "picojepa.runtime.cli" in modules
    code = (f"import importlib, sys; [importlib.import_module(m) for m in {modules!r}]; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx', 'matplotlib') "
            "or m.startswith(('picojepa.train', 'picojepa.export'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_runtime_only_install_carries_no_training_or_export_dependency():
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[2] / "setup.cfg")
    base = {line.split("=")[0].split(">")[0].split("<")[0].strip()
            for line in cfg["options"]["install_requires"].split("\n") if line.strip()}
    assert base.isdisjoint({"onnx", "onnxscript", "matplotlib", "scikit-learn"}), base
    extras = cfg["options.extras_require"]
    assert "onnx" in extras["export"] and "matplotlib" in extras["train"]
