"""Event clips: retention that only ever deletes the service's own files."""
import json
import os
import time


def _aged(path, size: int, age_days: float):
    path.write_bytes(b"x" * size)
    t = time.time() - age_days * 86400
    os.utime(path, (t, t))
    return path


def test_retention_deletes_only_the_clips_the_service_wrote_never_the_users_files(tmp_path):
    """Clips of an earlier run (in the journal) age out and the oldest go past the size bound after
    a restart; the user's own videos and pictures stay, even one named like a clip and older than
    all, and so does a clip of the journal that the user has since replaced."""
    from picojepa.runtime.live.recorder import ClipStore

    mine = [_aged(tmp_path / n, 5000, 90) for n in ("holiday.mp4", "cat.jpg", "door_20200101-000000-000_x.mp4")]
    earlier = ClipStore(tmp_path, max_bytes=1e9)  # the run before a restart
    ours = [_aged(tmp_path / f"door_2026010{i}-000000-000_fight.{ext}", 300, age)
            for i, (age, ext) in enumerate([(40, "mp4"), (3, "jpg"), (2, "mp4"), (1, "mp4")])]
    replaced = _aged(tmp_path / "door_20260105-000000-000_fight.mp4", 300, 50)
    for p in [*ours, replaced]:
        earlier.add(p)
    _aged(replaced, 999, 50)  # the user's file now, under the clip's name
    assert {p.name for p in tmp_path.iterdir()} >= {p.name for p in [*mine, *ours]}

    store = ClipStore(tmp_path, max_bytes=700, max_age_s=30 * 86400)  # a new run reads the journal
    newest = _aged(tmp_path / "door_20260110-000000-000_fight.jpg", 300, 0)
    store.add(newest)
    left = {p.name for p in tmp_path.iterdir() if not p.name.startswith(".")}
    assert left == {*(p.name for p in mine), replaced.name, ours[3].name, newest.name}
    assert replaced.stat().st_size == 999
    listed = json.loads((tmp_path / ".picojepa-clips.json").read_text())["files"]
    assert set(listed) == {ours[3].name, newest.name}


def test_a_new_clip_never_takes_the_name_of_a_file_already_there(tmp_path):
    from picojepa.runtime.live.recorder import ClipStore

    store = ClipStore(tmp_path, 1e9)
    clip, snap = store.names("door", "fight", 1.5e9)
    clip.write_bytes(b"the user's")
    again, snap2 = store.names("door", "fight", 1.5e9)
    assert again != clip and snap2 != snap and again.name.endswith("_fight-2.mp4")
