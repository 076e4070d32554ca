"""Video decoding with torchcodec: a file -> resized uint8 frames, or a `DecodeError` that says why.

Never returns invented frames. The resize happens inside the decoder (FFmpeg's swscale, bilinear
with anti-aliasing), which is both the fastest place for it and the same for training and runtime.
"""
from __future__ import annotations

import errno
import functools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from picojepa.core.errors import DecodeError, FFmpegMissingError

from .clips import ClipSpec, Region, SeekMode, normalize

TAIL = 16  # at most this many announced-but-missing frames at the end are tolerated
# file suffixes taken for videos when a folder is searched (any file given by name is tried)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".m4v", ".ts", ".m2ts", ".mts")
TS_PACKET = 188  # MPEG-TS: fixed-size packets, each starting with the sync byte 0x47
REMUX_TIMEOUT_S = 300.0


@functools.lru_cache(maxsize=1)
def _torchcodec():
    """Import torchcodec's decoder lazily and turn a missing FFmpeg into one clear error."""
    try:
        from torchcodec.decoders import VideoDecoder  # torchcodec loads torch: only when a video is opened
        from torchcodec.transforms import Resize  # torchcodec loads torch: only when a video is opened
    except (RuntimeError, OSError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FFmpegMissingError(first[:200]) from None
    return VideoDecoder, Resize


def _crop(region: Region):
    """A decoder transform cutting `region` out of the full RGB frame: the spec torchcodec 0.13's
    own RandomCrop hands to its filter graph, at a fixed place computed from the frame size the
    decoder passes in (no second open of the file for its metadata). The pixels equal the live
    path's crop of the converted frame (tests/core/test_decode.py holds it)."""
    from torchcodec.transforms._decoder_transforms import DecoderTransform  # loads torch: only when a video is opened

    class RegionCrop(DecoderTransform):
        def _make_transform_spec(self, input_dims) -> str:
            height, width = input_dims
            if not height or not width:
                raise ValueError("a region needs the video's frame size, which its metadata lacks")
            x0, y0, w, h = region.pixels(width, height)
            return f"crop, {h}, {w}, {x0}, {y0}"

        def _get_output_dims(self):
            return None  # known only from the input's; the Resize that follows does not need them

    return RegionCrop()


def check_ffmpeg() -> None:
    """Raise `FFmpegMissingError` unless torchcodec and the FFmpeg libraries load."""
    _torchcodec()


def _loops(link: Path) -> bool:
    """Whether following `link` comes back to a link already followed (the OS gives up: ELOOP)."""
    try:
        link.stat()
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def check_readable(path: str | os.PathLike) -> Path:
    """Raise `DecodeError` for a path that cannot be a readable video file."""
    p = Path(path)
    if not p.exists():
        if p.is_symlink():
            raise DecodeError(p, "symbolic link loop" if _loops(p) else "dangling symbolic link")
        raise DecodeError(p, "no such file")
    if p.is_dir():
        raise DecodeError(p, "is a directory, not a video file")
    if not p.is_file():
        raise DecodeError(p, "not a regular file")
    if not os.access(p, os.R_OK):
        raise DecodeError(p, "permission denied")
    if p.stat().st_size == 0:
        raise DecodeError(p, "empty file (0 bytes)")
    try:
        str(p).encode("utf-8")
    except UnicodeEncodeError:  # a name in another encoding than the file system's: torchcodec takes str
        raise DecodeError(p, "the file name is not valid UTF-8, which the decoder cannot open; "
                             "rename the file") from None
    return p


def _reason(exc: Exception, opened: bool = False) -> str:
    """A short reason for a torchcodec error. `opened`: the container was read already, so data
    FFmpeg cannot parse is damage inside the stream, not a file that is no video at all."""
    text = " ".join(str(exc).split())
    low = text.lower()
    if opened and "invalid data" in low:
        return f"corrupt video data inside the stream ({text[:160]})"
    if ("no valid stream" in low or "no video stream" in low or "best stream" in low
            or "best video stream is unknown" in low):
        return "no video stream in the file"
    if "invalid data" in low or "could not open input" in low or "failed to open" in low:
        return "not a video file FFmpeg can read"
    return f"corrupt or truncated video data ({text[:160]})"


@dataclass
class VideoReader:
    """An open video, resized to `size`x`size` at decode time."""

    path: Path
    num_frames: int
    fps: float
    width: int
    height: int
    codec: str
    _decoder: object
    _keyframes: list[int] | None = None

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps if self.fps > 0 else 0.0

    @property
    def keyframes(self) -> list[int]:
        """Indices of the key frames, from the index that 'exact' seeking scanned at open (no
        extra pass over the file). torchcodec 0.13 has no public call for it: this uses its
        private one, and says so in one line if a torchcodec upgrade removed it."""
        if self._keyframes is None:
            try:
                from torchcodec._core import _get_key_frame_indices  # loads torch: only on opening a video

                found = _get_key_frame_indices(self._decoder._decoder)
            except (ImportError, AttributeError) as exc:
                raise DecodeError(self.path, "keyframe placement needs torchcodec's keyframe index "
                                             f"(this torchcodec has none: {exc})") from None
            except RuntimeError as exc:  # opened in approximate mode: nothing was scanned
                raise DecodeError(self.path, f"no keyframe index ({_reason(exc)})") from None
            self._keyframes = [int(k) for k in found.tolist()]
        return self._keyframes

    def placement_keyframes(self, spec: ClipSpec) -> list[int] | None:
        """What the clip functions need for `spec.placement`: the keyframes, or None ('exact')."""
        return self.keyframes if spec.placement == "keyframe" else None

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at `indices` as uint8 (T, H, W, 3). Repeated indices are decoded once.

        Some containers announce a few frames more than their stream delivers (an MPEG-PS file
        of the real set says 190 and decodes 188). Such phantom frames at the end are treated as
        past the end of the video: `num_frames` shrinks to what decodes and the last real frame
        repeats, the rule for short videos. More than `TAIL` missing frames is a DecodeError."""
        unique = sorted(set(int(i) for i in indices))
        if unique and (unique[0] < 0 or unique[-1] >= self.num_frames):
            raise DecodeError(self.path, f"frame index out of range 0..{self.num_frames - 1}")
        try:
            data = self._frames(unique)
        except _PastEnd:
            data, unique = self._one_by_one(unique)
            indices = [min(int(i), self.num_frames - 1) for i in indices]
        if data.shape[0] != len(unique):
            raise DecodeError(self.path, f"decoded {data.shape[0]} of {len(unique)} frames")
        pos = {idx: k for k, idx in enumerate(unique)}
        return data[[pos[int(i)] for i in indices]]

    def read_clips(self, clips: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """The clips of these frame indices, each uint8 (T, H, W, 3), from one read of all their
        frames: one forward pass with a seek only where a clip lies beyond the current GOP,
        instead of a seek per clip."""
        data = self.read([i for c in clips for i in c])
        ends = np.cumsum([0, *(len(c) for c in clips)])
        return [data[a:b] for a, b in zip(ends[:-1], ends[1:])]

    def _frames(self, unique: list[int]) -> np.ndarray:
        try:
            batch = self._decoder.get_frames_at(unique)
        except Exception as exc:  # torchcodec raises RuntimeError/ValueError/IndexError
            if "no more frames left" in str(exc):
                raise _PastEnd() from None
            raise DecodeError(self.path, _reason(exc, opened=True)) from None
        return batch.data.cpu().numpy()

    def _one_by_one(self, unique: list[int]) -> tuple[np.ndarray, list[int]]:
        """The decoder ran dry inside a batch. Decode each frame on its own, last first, so that
        every request seeks (decoding forward runs into the phantom frames' gap), and where the
        highest frames do not exist, end the video at the last one that does.
        -> (frames, their indices)."""
        got, missing = {}, []
        for i in reversed(unique):
            try:
                got[i] = self._frames([i])[0]
            except _PastEnd:
                missing.append(i)
        if missing:
            if not got or min(missing) < max(got):
                raise DecodeError(self.path, "the decoder ran out of frames inside the video")
            last = min(missing) - 1
            while last not in got and min(missing) - last <= TAIL:
                try:
                    got[last] = self._frames([last])[0]
                except _PastEnd:
                    last -= 1
            if self.num_frames - last - 1 > TAIL:
                raise DecodeError(self.path, f"the container announces {self.num_frames} frames "
                                             f"but the stream ends more than {TAIL} earlier")
            self.num_frames = last + 1
        order = sorted(got)
        return np.stack([got[i] for i in order]), order


class _PastEnd(Exception):
    """The decoder ran out of frames before an index the container announced."""


def is_mpegts(path: Path) -> bool:
    """An MPEG-TS file (what cameras and recorders write), recognised by its packet sync bytes."""
    with open(path, "rb") as f:
        head = f.read(3 * TS_PACKET)
    return len(head) == 3 * TS_PACKET and head[0] == head[TS_PACKET] == head[2 * TS_PACKET] == 0x47


def remux_to_mp4(path: Path) -> Path:
    """The same video stream in an MP4 container (no re-encoding, `ffmpeg -c copy`), in a
    temporary file the caller deletes. torchcodec 0.13 cannot decode MPEG-TS streams whose first
    frames are B-frames (the stream starts after its first timestamp); remuxed, they decode."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise DecodeError(path, "an MPEG-TS file needs the ffmpeg command to be remuxed for "
                                "decoding, and none is on PATH (install FFmpeg)")
    fd, tmp = tempfile.mkstemp(suffix=".mp4", prefix="picojepa-remux-")
    os.close(fd)
    try:
        done = subprocess.run([ffmpeg, "-v", "error", "-nostdin", "-y", "-i", str(path), "-map", "0:v:0",
                               "-c", "copy", "-f", "mp4", tmp], capture_output=True, text=True,
                              timeout=REMUX_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.unlink(tmp)
        raise DecodeError(path, f"remuxing the MPEG-TS file took longer than {REMUX_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        os.unlink(tmp)
        why = " ".join(done.stderr.split())[:160] or f"ffmpeg exit code {done.returncode}"
        raise DecodeError(path, f"corrupt MPEG-TS file ({why})")
    return Path(tmp)


def open_video(
    path: str | os.PathLike,
    size: int,
    seek_mode: SeekMode = "exact",
    device: str = "cpu",
    threads: int = 1,
    region: Region | None = None,
) -> VideoReader:
    """Open `path` for decoding at `size`x`size` (of `region` only, when given). Raises
    `DecodeError` with the reason. An MPEG-TS file is remuxed to MP4 first (see `remux_to_mp4`);
    the temporary copy is unlinked as soon as the decoder holds it open."""
    p = check_readable(path)
    VideoDecoder, Resize = _torchcodec()
    source = remux_to_mp4(p) if is_mpegts(p) else p
    try:
        transforms = [Resize((size, size))] if region is None else [_crop(region), Resize((size, size))]
        dec = VideoDecoder(
            str(source),
            seek_mode=seek_mode,
            dimension_order="NHWC",
            device=device,
            num_ffmpeg_threads=threads,
            transforms=transforms,
        )
        meta = dec.metadata
    except Exception as exc:
        raise DecodeError(p, _reason(exc)) from None
    finally:
        if source != p:
            source.unlink(missing_ok=True)  # the decoder keeps its own handle on it
    n = meta.num_frames or 0
    if n <= 0:
        raise DecodeError(p, "no decodable frames")
    fps = float(meta.average_fps or 0.0)
    return VideoReader(p, int(n), fps, int(meta.width or 0), int(meta.height or 0),
                       str(meta.codec or "?"), dec)


def load_clip(path, spec: ClipSpec, indices_fn, device: str = "cpu") -> np.ndarray:
    """Decode one clip: `indices_fn(num_frames, keyframes)` picks the frames (keyframes None
    unless `spec.placement` is 'keyframe'); returns float32 (3, T, S, S)."""
    video = open_video(path, spec.size, spec.seek_mode, device=device)
    return normalize(video.read(indices_fn(video.num_frames, video.placement_keyframes(spec))), spec)
