"""The three rooms install under one namespace; nothing bare lands in site-packages."""
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO


@pytest.mark.slow
def test_wheel_installs_only_under_picojepa(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(REPO)], check=True)
    wheel = next(tmp_path.glob("picojepa-*.whl"))
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"picojepa"}
    names = zipfile.ZipFile(wheel).namelist()
    for room in ("train", "export", "runtime"):
        assert f"picojepa/{room}/__init__.py" in names


def test_installed_modules_resolve_to_the_repository_rooms():
    import picojepa.export
    import picojepa.runtime
    import picojepa.train

    for mod, room in ((picojepa.train, "train"), (picojepa.export, "export"), (picojepa.runtime, "runtime")):
        assert mod.__file__.replace("\\", "/").endswith(f"{room}/__init__.py")
    import importlib.util

    for bare in ("train", "export", "runtime"):
        spec = importlib.util.find_spec(bare)
        assert spec is None or "site-packages" not in str(spec.origin)
