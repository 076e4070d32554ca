import io
import subprocess
import sys
import tarfile

import pytest
from click.testing import CliRunner

from picojepa.train.data_cli import main as data_main
from picojepa.train.kinetics import DownloadError, fetch, prepare
from picojepa.train.layout import read_classes, read_items

from conftest import REAL, needs_real


def test_synth_is_deterministic_for_a_seed(tmp_path):
    import numpy as np

    from picojepa.train.synth import render

    a, fa = render("spin", np.random.default_rng([0, 2, 5]))
    b, fb = render("spin", np.random.default_rng([0, 2, 5]))
    assert fa == fb and np.array_equal(a, b)


def test_the_builtin_videos_are_the_same_files_from_every_process(tmp_path):
    """Two processes write the same bytes (the encoder this replaced did not, once it had written
    videos of other sizes before)."""
    code = ("import sys, numpy as np; from pathlib import Path; from picojepa.train.synth import encode, render\n"
            "videos = [(0, 0, 'slide_right'), (1, 3, 'slide_left'), (3, 0, 'pulse'), (2, 7, 'spin'), (3, 1, 'pulse')]\n"
            "for c, i, n in videos:\n"
            "    f, fps = render(n, np.random.default_rng([0, c, i]))\n"
            "    encode(f, fps, Path(sys.argv[1]) / f'{n}{i}.mp4')\n")
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        subprocess.run([sys.executable, "-c", code, str(tmp_path / d)], check=True, timeout=120)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["pulse0.mp4", "pulse1.mp4", "slide_left3.mp4", "slide_right0.mp4", "spin7.mp4"]
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)


def _real_classes(src, n):
    """SRC/<class>/ with links to the first n real clips of each class of typing_vs_exercise."""
    for cls in ("typing", "doing_exercises"):
        (src / cls).mkdir(parents=True)
        for f in sorted((REAL / "labeled" / "typing_vs_exercise" / cls).glob("*.mp4"))[:n]:
            (src / cls / f.name).symlink_to(f)
    return src


@needs_real
def test_index_keeps_good_videos_and_names_the_bad_one(tmp_path):
    src = _real_classes(tmp_path / "src", 4)
    (src / "typing" / "broken.mp4").write_bytes(b"\x00\x01garbage" * 20)
    out = tmp_path / "out"
    r = CliRunner().invoke(data_main, ["index", str(src), "--out", str(out)])
    assert r.exit_code == 1, r.output
    bad_lines = [line for line in r.stderr.splitlines() if "broken.mp4" in line]
    assert len(bad_lines) == 1 and "Traceback" not in r.output
    classes = read_classes(out)
    assert classes == ["doing_exercises", "typing"]
    train = read_items(out / "train" / "class.csv", classes)
    infer = read_items(out / "infer" / "class.csv", classes)
    assert len(train) + len(infer) == 8
    assert {y for _, y in infer} == {0, 1}


def _fake_archive(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_kinetics_preparation_on_a_fake_archive_tree(tmp_path):
    raw = tmp_path / "raw"
    (raw / "train").mkdir(parents=True)
    (raw / "val").mkdir()
    train = {f"train/{c}/{c}_{i}.mp4": b"v" for c in ("abseiling", "archery", "zumba") for i in range(4)}
    train["../evil/escape.mp4"] = b"x"
    _fake_archive(raw / "train" / "k700_train_001.tar.gz", train)
    _fake_archive(raw / "val" / "k700_val_001.tar.gz",
                  {f"{c}/{c}_v.mp4": b"v" for c in ("abseiling", "archery", "zumba")})
    root = tmp_path / "k"
    names = prepare(raw, root, classes=2)
    assert names == ["abseiling", "archery"] and read_classes(root) == names
    assert len(read_items(root / "train" / "class.csv", names)) == 8
    assert len(read_items(root / "infer" / "class.csv", names)) == 2
    assert not (tmp_path / "evil").exists() and not (root / "train" / "zumba").exists()
    for k in range(1, 5):
        assert len(read_items(root / "train" / f"model-{k}.csv", names)) == 2


def test_download_offline_is_a_clear_resumable_error(tmp_path):
    with pytest.raises(DownloadError, match="cannot download.*resume"):
        fetch("http://127.0.0.1:9/k700_train_001.tar.gz", tmp_path / "a.tar.gz", timeout=2)
    assert not (tmp_path / "a.tar.gz").exists()


def test_data_cli_bad_source_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-c", "from picojepa.train.data_cli import main; main()",
                        "index", str(tmp_path / "missing")], capture_output=True, text=True)
    assert r.returncode == 3 and r.stderr.count("\n") == 1 and "missing" in r.stderr


def test_synth_unlabelled_videos_are_listed_for_pretraining_only(tmp_path):
    res = CliRunner().invoke(data_main, ["synth", str(tmp_path), "--classes", "2",
                                         "--videos-per-class", "8", "--unlabelled-per-class", "2"])
    assert res.exit_code == 0, res.output
    assert "+ 4 unlabelled" in res.output
    classes = read_classes(tmp_path)
    pretrain = {p.relative_to(tmp_path / "train").as_posix() for p, _ in read_items(tmp_path / "train" / "train.csv")}
    labelled = {p.relative_to(tmp_path / "train").as_posix() for p, _ in read_items(tmp_path / "train" / "class.csv", classes)}
    unlabelled = pretrain - labelled
    assert len(labelled) == 2 * 6 and labelled < pretrain
    assert sorted(unlabelled) == [f"unlabelled/video_{k:05d}.mp4" for k in range(4)]
    for k in range(1, 5):
        part = {p.relative_to(tmp_path / "train").as_posix() for p, _ in read_items(tmp_path / "train" / f"model-{k}.csv", classes)}
        assert part <= labelled


@needs_real
def test_index_unlabelled_footage_feeds_pretraining_only_cut_into_pieces(tmp_path):
    from picojepa.core.decode import open_video

    src = _real_classes(tmp_path / "src", 4)
    footage = tmp_path / "cam" / "day1"
    footage.mkdir(parents=True)
    long_clip = REAL / "bench" / "one-by-one-person-detection__intel.mp4"
    (footage / "a.mp4").symlink_to(long_clip)
    (footage / "broken.mp4").write_bytes(b"garbage" * 30)
    out = tmp_path / "out"
    r = CliRunner().invoke(data_main, ["index", str(src), "--out", str(out), "--unlabelled",
                                       str(tmp_path / "cam"), "--piece-s", "10"])
    assert r.exit_code == 1 and "broken.mp4" in r.stderr  # named, left out; the rest indexed
    pretrain = [p.name for p, _ in read_items(out / "train" / "train.csv")]
    labelled = [p.name for p, _ in read_items(out / "train" / "class.csv", read_classes(out))]
    pieces = int(open_video(long_clip, 32).duration_s // 10)
    assert pieces > 1 and pretrain.count("0__day1__a.mp4") == pieces
    assert len(pretrain) == len(labelled) + pieces and "0__day1__a.mp4" not in labelled
    for k in range(1, 5):
        assert all(p.parent.name != "unlabelled" for p, _ in read_items(out / "train" / f"model-{k}.csv",
                                                                        read_classes(out)))


@needs_real
def test_index_can_keep_the_split_written_in_the_file_names(tmp_path):
    src = REAL / "labeled" / "typing_vs_exercise"
    out = tmp_path / "out"
    r = CliRunner().invoke(data_main, ["index", str(src), "--out", str(out), "--held-out-prefix", "test__",
                                       "--held-out-prefix", "val__"])
    assert r.exit_code == 0, r.output
    classes = read_classes(out)
    infer = [p.name for p, _ in read_items(out / "infer" / "class.csv", classes)]
    train = [p.name for p, _ in read_items(out / "train" / "class.csv", classes)]
    assert infer and all(n.startswith(("test__", "val__")) for n in infer)
    assert train and all(n.startswith("train__") for n in train)


@needs_real
def test_index_with_builtin_videos_adds_them_to_pretraining_only(tmp_path):
    src = _real_classes(tmp_path / "src", 3)
    out = tmp_path / "out"
    r = CliRunner().invoke(data_main, ["index", str(src), "--out", str(out), "--with-builtin", "1"])
    assert r.exit_code == 0, r.output
    pretrain = [p for p, _ in read_items(out / "train" / "train.csv")]
    builtin = [p for p in pretrain if p.parent.name == "builtin"]
    assert len(builtin) == 4 and all(p.stat().st_size > 0 for p in builtin)
    labelled = read_items(out / "train" / "class.csv", read_classes(out))
    assert len(pretrain) == len(labelled) + 4 and read_classes(out) == ["doing_exercises", "typing"]


def _classes_from(smoke_data, src, names):
    """SRC/<name>/ with links to 4 of the smoke data's training videos each."""
    videos = sorted((smoke_data / "train").rglob("*.mp4"))
    for k, name in enumerate(names):
        (src / name).mkdir(parents=True)
        for i, v in enumerate(videos[4 * k:4 * k + 4]):
            (src / name / f"{i}.mp4").symlink_to(v)
    return src


def test_reindexing_replaces_the_whole_root_and_only_with_force(smoke_data, tmp_path):
    """A second index with fewer classes leaves nothing of the old one (no stale held-out
    videos for --labels-from-folders to score), and only when asked to replace it."""
    out = tmp_path / "root"
    three = _classes_from(smoke_data, tmp_path / "three", ["a", "b", "c"])
    assert CliRunner().invoke(data_main, ["index", str(three), "--out", str(out)]).exit_code == 0
    two = _classes_from(smoke_data, tmp_path / "two", ["a", "b"])
    r = CliRunner().invoke(data_main, ["index", str(two), "--out", str(out)])
    assert r.exit_code == 3 and "already exists (use --force" in r.stderr
    assert read_classes(out) == ["a", "b", "c"]
    r = CliRunner().invoke(data_main, ["index", str(two), "--out", str(out), "--force"])
    assert r.exit_code == 0, r.output
    assert read_classes(out) == ["a", "b"]
    assert sorted(p.name for p in (out / "infer").iterdir()) == ["a", "b", "class.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root", "three", "two"], "no draft left"


def test_class_folders_with_spaces_index_and_read_back(smoke_data, tmp_path):
    src = _classes_from(smoke_data, tmp_path / "src", ["left turn", "right turn"])
    r = CliRunner().invoke(data_main, ["index", str(src), "--out", str(tmp_path / "root")])
    assert r.exit_code == 0, r.output
    classes = read_classes(tmp_path / "root")
    assert classes == ["left turn", "right turn"]
    assert {y for _, y in read_items(tmp_path / "root" / "train" / "class.csv", classes)} == {0, 1}


@pytest.mark.parametrize("name, why", [("left\nturn", "holds a line break"), (" left", "white space"),
                                       ("left ", "white space"), (b"l\xffeft", "not valid UTF-8")])
def test_a_class_folder_name_classind_cannot_hold_is_refused_naming_it(smoke_data, tmp_path, name, why):
    """A name that classInd.txt would not give back is refused before anything is written (training
    would refuse the root it made); a name with spaces inside reads back (test above)."""
    src = _classes_from(smoke_data, tmp_path / "src", ["right"])
    folder = (src / "right").with_name(name.decode("utf-8", "surrogateescape") if isinstance(name, bytes) else name)
    _classes_from(smoke_data, folder.parent, [folder.name])
    out = tmp_path / "root"
    r = CliRunner().invoke(data_main, ["index", str(src), "--out", str(out)])
    assert r.exit_code == 3, r.output
    errors = [line for line in r.stderr.splitlines() if not line.startswith("probe: ")]  # the progress lines
    assert len(errors) == 1 and errors[0].startswith(f"error: {src}: class folder ") and why in errors[0], r.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["src"], "nothing written"


def test_a_symbolic_link_loop_is_reported_as_a_loop(smoke_data, tmp_path):
    src = _classes_from(smoke_data, tmp_path / "src", ["a", "b"])
    (src / "a" / "loop.mp4").symlink_to(src / "a" / "loop2.mp4")
    (src / "a" / "loop2.mp4").symlink_to(src / "a" / "loop.mp4")
    (src / "b" / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    r = CliRunner().invoke(data_main, ["index", str(src), "--out", str(tmp_path / "root")])
    assert r.exit_code == 1, r.output
    [loop] = [line for line in r.stderr.splitlines() if line.endswith("loop.mp4: symbolic link loop (left out)")]
    [gone] = [line for line in r.stderr.splitlines() if "gone.mp4" in line]
    assert "dangling symbolic link" in gone and "dangling" not in loop


def test_byte_identical_videos_are_indexed_with_a_warning_naming_both(smoke_data, tmp_path):
    src = _classes_from(smoke_data, tmp_path / "src", ["a", "b"])
    (src / "b" / "copy.mp4").write_bytes((src / "a" / "0.mp4").read_bytes())
    (src / "a" / "again.mp4").write_bytes((src / "a" / "1.mp4").read_bytes())
    r = CliRunner().invoke(data_main, ["index", str(src), "--out", str(tmp_path / "root")])
    assert r.exit_code == 0, r.output
    across, within = sorted(line for line in r.stderr.splitlines() if line.startswith("warning: "))  # a/0 < a/1
    assert across.startswith(f"warning: {src / 'a' / '0.mp4'} and {src / 'b' / 'copy.mp4'}: the same video") \
        and "under classes 'a' and 'b': a labelling error" in across
    assert within.startswith(f"warning: {src / 'a' / '1.mp4'} and {src / 'a' / 'again.mp4'}: the same video") \
        and "twice in class 'a'" in within
    assert len(read_items(tmp_path / "root" / "train" / "class.csv", read_classes(tmp_path / "root"))) + \
        len(read_items(tmp_path / "root" / "infer" / "class.csv", read_classes(tmp_path / "root"))) == 10
