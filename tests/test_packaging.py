"""One package under src/: the import path is the file path, and the wheel holds every module."""
import subprocess
import sys
import zipfile

from conftest import REPO

PKG = REPO / "src" / "picojepa"


def test_the_wheel_holds_every_module_and_nothing_bare(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(REPO)], check=True, timeout=300)
    wheel = next(tmp_path.glob("picojepa-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"picojepa"}
    modules = {str(p.relative_to(PKG.parent)) for p in PKG.rglob("*.py")}
    assert modules, "no module found under src/picojepa"
    assert not modules - names, f"missing from the wheel: {sorted(modules - names)}"
    weights = {"picojepa/train/weights/foundation.pt", "picojepa/train/weights/foundation.json"}
    assert weights <= names, "the foundation encoder's weights are not in the wheel"


def test_an_import_path_resolves_to_its_file_from_any_directory(tmp_path):
    """`picojepa.core.bundle` is src/picojepa/core/bundle.py, asked from a directory that is not the
    checkout; the rooms' bare names (`train`, `core`) are not importable packages."""
    code = ("import importlib.util, picojepa.core.bundle as b; print(b.__file__); "
            "print(all(importlib.util.find_spec(n) is None for n in ('core', 'train', 'export', 'runtime')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                         timeout=120).stdout.split()
    assert out == [str(PKG / "core" / "bundle.py"), "True"]
