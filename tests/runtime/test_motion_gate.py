"""The motion gate around the windows: the camera file's `motion` key, `no motion` answers in the
classifying loop (no inference), events and the status counters. No video, no network."""
import threading

import numpy as np
import pytest

from picojepa.runtime.live.cameras import CameraFileError, EventFilter, load_cameras
from picojepa.runtime.live.classify import classify_streams
from picojepa.runtime.live.motion import DEFAULT_THRESHOLD, NO_MOTION
from picojepa.runtime.live.options import LiveStats
from picojepa.runtime.live.windows import Window


def _cams(tmp_path, motion_lines: str):
    f = tmp_path / "cameras.yaml"
    f.write_text("cameras:\n" + motion_lines)
    return load_cameras(str(f))


def test_the_camera_files_motion_key_sets_or_turns_off_the_gate_per_camera(tmp_path):
    cams = _cams(tmp_path, "  - {name: a, url: rtsp://x, motion: 0.2}\n  - {name: b, url: rtsp://y, motion: false}\n"
                           "  - {name: c, url: rtsp://z, motion: true}\n  - {name: d, url: rtsp://w}\n")
    a, b, c, d = cams.cameras
    assert [cam.motion_gate(0.05, DEFAULT_THRESHOLD) for cam in (a, b, c, d)] == [0.2, None, 0.05, 0.05]
    assert [cam.motion_gate(None, DEFAULT_THRESHOLD) for cam in (a, b, c, d)] == [0.2, None, DEFAULT_THRESHOLD, None]


@pytest.mark.parametrize("value", ["-1", "101", "'low'", ".nan", "[1]"])
def test_a_bad_motion_threshold_is_refused_naming_the_camera_and_the_key(tmp_path, value):
    with pytest.raises(CameraFileError) as err:
        _cams(tmp_path, f"  - {{name: a, url: rtsp://x, motion: {value}}}\n")
    assert "camera 1 (a): motion: expected true, false or a threshold" in str(err.value)


class _Runner:
    def __init__(self, windows):
        self.windows, self.stats = list(windows), LiveStats()

    def take(self):
        return self.windows.pop(0) if self.windows else None

    @property
    def finished(self):
        return not self.windows

    def clip(self, w):
        return np.zeros((1, 3, 2, 8, 8), np.float32)


class _NoModel:
    batches = False

    def answer(self, d, method):  # only windows that moved get here
        return f"classified {d.path}"


def test_a_gated_window_is_answered_no_motion_without_inference_and_counted():
    still = Window(0.0, 1.0, None, 0.0, 2.0, motion=0.01)
    moving = Window(1.0, 2.0, np.zeros((2, 8, 8, 3), np.uint8), 0.0, 2.0, motion=9.0)
    runners = {"cam": _Runner([still, moving])}
    got = list(classify_streams(_NoModel(), runners, "majority", threading.Event()))
    (n1, w1, p1), (n2, w2, p2) = got
    assert (n1, p1.label, p1.confidence, p1.members, p1.timings_ms["inference"]) == ("cam", NO_MOTION, None, {}, 0.0)
    assert p2 == "classified cam"
    assert runners["cam"].stats.no_motion == 1 and runners["cam"].stats.windows == 1


def test_no_motion_is_never_an_event_and_what_moves_after_it_is_one():
    events = EventFilter()
    assert [events.check("cam", label, 0.0) for label in ("typing", NO_MOTION, "typing")] == [
        None, None, {"label": "typing", "previous": NO_MOTION}]
    chosen = EventFilter(labels={"cam": {"typing"}})
    assert chosen.check("cam", NO_MOTION, 0.0) is None and chosen.check("cam", "typing", 0.0)["label"] == "typing"
