"""Small animated pictures of clips for the run's report page: the frames a clip takes (the
evaluation clip of a video: `center_indices`), decoded at thumbnail size, as GIFs (Pillow), and
the same frames at the model's size, normalised, for an occlusion map."""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from picojepa.core.clips import ClipSpec, center_indices, normalize
from picojepa.core.decode import open_video

SIZE = 64  # thumbnail side, pixels
MAX_FRAMES = 8  # frames a thumbnail shows at most (evenly picked from the clip's)
FRAME_MS = 200


@dataclass
class ClipView:
    """One video's evaluation clip: the frames it takes of the video, thumbnail frames
    (F, SIZE, SIZE, 3) uint8, and (when asked for) the model's normalised clip (3, T, S, S)."""

    path: str
    num_frames: int
    indices: list[int]
    thumb: np.ndarray
    clip: np.ndarray | None = None


def picks(n: int) -> list[int]:
    """Which of a clip's n frames a thumbnail shows: all, or MAX_FRAMES evenly spread."""
    return list(range(n)) if n <= MAX_FRAMES else np.linspace(0, n - 1, MAX_FRAMES).round().astype(int).tolist()


def clip_indices(path: str | Path, spec: ClipSpec) -> tuple[int, list[int]]:
    """(frames of the video, the frames its evaluation clip takes); DecodeError if unreadable."""
    video = open_video(path, 8, spec.seek_mode)  # the size does not matter: nothing is decoded
    return video.num_frames, center_indices(video.num_frames, spec, video.placement_keyframes(spec))


def view(path: str | Path, spec: ClipSpec, with_clip: bool = False) -> ClipView:
    """Decode a video's evaluation clip for the page; DecodeError if it cannot be."""
    video = open_video(path, SIZE, spec.seek_mode)
    idx = center_indices(video.num_frames, spec, video.placement_keyframes(spec))
    thumb = video.read([idx[i] for i in picks(len(idx))])
    clip = None
    if with_clip:
        clip = normalize(open_video(path, spec.size, spec.seek_mode).read(idx), spec)
    return ClipView(str(path), video.num_frames, idx, thumb, clip)


def gif(frames: np.ndarray, frame_ms: int = FRAME_MS) -> bytes:
    """uint8 frames (F, H, W, 3) -> an animated GIF that loops."""
    from PIL import Image  # the training extra's (with matplotlib): only when a page is drawn

    images = [Image.fromarray(f).quantize(colors=64, method=Image.Quantize.MEDIANCUT) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0,
                   disposal=1)
    return buf.getvalue()


def data_uri(data: bytes, mime: str) -> str:
    """A file inlined in the page (no network, no second file)."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def gif_uri(frames: np.ndarray) -> str:
    return data_uri(gif(frames), "image/gif")
