"""An export replaces only a bundle, whole or not at all: full disks and killed exports lose nothing."""
import shutil
import subprocess

import pytest


def test_a_bundle_export_on_a_full_disk_leaves_nothing_behind(tiny_disk, smoke_run):
    from picojepa.core.outdir import OutputDirError
    from picojepa.export.bundle import export_bundle

    (tiny_disk / "filler").write_bytes(b"\0" * (400 << 10))  # a bundle's graph no longer fits
    with pytest.raises(OutputDirError, match=f"{tiny_disk / 'bundle'}: writing failed, nothing replaced"):
        export_bundle(smoke_run[0], tiny_disk / "bundle", optimise=False)
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler"]


def test_an_interrupted_exports_draft_is_refused_by_the_runtime_and_removed_by_the_next_export(
        smoke_run, smoke_bundle, tmp_path):
    from picojepa.core.bundle import load_bundle
    from picojepa.core.errors import BundleError
    from picojepa.core.outdir import INCOMPLETE, PARTIAL
    from picojepa.export.bundle import export_bundle

    dead = subprocess.Popen(["true"])
    dead.wait()
    draft = tmp_path / f".bundle{PARTIAL}{dead.pid}-x"
    shutil.copytree(smoke_bundle, draft)
    (draft / INCOMPLETE).write_text("")
    with pytest.raises(BundleError, match="never finished"):
        load_bundle(draft)
    export_bundle(smoke_run[0], tmp_path / "bundle", optimise=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    load_bundle(tmp_path / "bundle")
    (tmp_path / "bundle" / "ensemble.onnx").write_bytes(b"damaged")
    export_bundle(smoke_run[0], tmp_path / "bundle", force=True, optimise=False)  # --force: a bundle may go
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    load_bundle(tmp_path / "bundle")  # the damaged one was replaced whole
