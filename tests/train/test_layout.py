from collections import Counter

import pytest

from picojepa.core.errors import DataLayoutError
from picojepa.train.layout import read_classes, read_items, stratified_parts


def test_quarters_are_disjoint_complete_and_stratified():
    labels = [0] * 40 + [1] * 21 + [2] * 13
    parts = stratified_parts(labels, 4, seed=3)
    flat = [i for p in parts for i in p]
    assert sorted(flat) == list(range(len(labels)))
    for p in parts:
        counts = Counter(labels[i] for i in p)
        assert counts[0] == 10 and counts[1] in (5, 6) and counts[2] in (3, 4)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_synth_layout_quarters_partition_class_csv(smoke_data):
    classes = read_classes(smoke_data)
    general = read_items(smoke_data / "train" / "class.csv", classes)
    parts = [read_items(smoke_data / "train" / f"model-{k}.csv", classes) for k in range(1, 5)]
    assert sorted(p for part in parts for p in part) == sorted(general)
    assert len(read_items(smoke_data / "train" / "train.csv")) == len(general)
    infer = read_items(smoke_data / "infer" / "class.csv", classes)
    assert not {p for p, _ in infer} & {p for p, _ in general}


@pytest.mark.parametrize("row,message", [
    ("/etc/passwd,a", "must be relative"),
    ("../../outside.mp4,a", "escapes"),
    ("a/missing.mp4,a", "file not found"),
    ("a/v.mp4,zebra", "unknown label"),
])
def test_bad_csv_rows_are_rejected_with_file_and_line(tmp_path, row, message):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "v.mp4").write_bytes(b"x")
    csv = tmp_path / "class.csv"
    csv.write_text("video_name,label\na/v.mp4,a\n" + row + "\n")
    with pytest.raises(DataLayoutError, match=message) as e:
        read_items(csv, ["a", "b"])
    assert f"{csv}:3" in str(e.value)


def test_csv_missing_label_column(tmp_path):
    csv = tmp_path / "class.csv"
    csv.write_text("video_name\n")
    with pytest.raises(DataLayoutError, match="missing column 'label'"):
        read_items(csv, ["a", "b"])


def test_class_list_must_be_numbered(tmp_path):
    (tmp_path / "classInd.txt").write_text("1 a\n3 b\n")
    with pytest.raises(DataLayoutError, match="expected '2 <name>'"):
        read_classes(tmp_path)
