"""PNG and animated PNG (APNG) files from uint8 RGB frames, with the standard library's zlib: the
runtime writes its pictures (`--explain`) without an image library (Pillow and matplotlib are
the training extra's). An encoder of a simple format, not a decoder: every browser and image
viewer reads PNG, and every current browser animates APNG."""
from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _check(frames: np.ndarray) -> None:
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        raise ValueError(f"frames must be uint8 (N, H, W, 3) with N, H, W > 0, got {frames.dtype} {frames.shape = }")


def _pixels(img: np.ndarray) -> bytes:
    """One picture's rows, each after its filter byte (0: none), compressed."""
    rows = np.concatenate([np.zeros((img.shape[0], 1), np.uint8), img.reshape(img.shape[0], -1)], axis=1)
    return zlib.compress(rows.tobytes(), 9)


def _header(h: int, w: int) -> bytes:
    return _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))  # 8-bit RGB


def png(img: np.ndarray) -> bytes:
    """uint8 (H, W, 3) -> a PNG file."""
    _check(img[None])
    return SIGNATURE + _header(*img.shape[:2]) + _chunk(b"IDAT", _pixels(img)) + _chunk(b"IEND", b"")


def apng(frames: np.ndarray, frame_ms: int = 200) -> bytes:
    """uint8 (N, H, W, 3) -> an animated PNG that loops, each frame shown `frame_ms`; a viewer
    that knows no APNG shows the first frame."""
    _check(frames)
    n, h, w, _ = frames.shape
    out, seq = [SIGNATURE, _header(h, w), _chunk(b"acTL", struct.pack(">II", n, 0))], 0
    for i, f in enumerate(frames):
        out.append(_chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, w, h, 0, 0, frame_ms, 1000, 0, 0)))
        seq += 1
        data = _pixels(f)
        if i == 0:
            out.append(_chunk(b"IDAT", data))
        else:
            out.append(_chunk(b"fdAT", struct.pack(">I", seq) + data))
            seq += 1
    return b"".join(out + [_chunk(b"IEND", b"")])


def strip(rows: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Rows of frames (each (N, H, W, 3)) side by side into one picture, white between them."""
    n, h, w, _ = rows[0].shape
    img = np.full((len(rows) * (h + gap) - gap, n * (w + gap) - gap, 3), 255, np.uint8)
    for r, frames in enumerate(rows):
        for i, f in enumerate(frames):
            img[r * (h + gap):r * (h + gap) + h, i * (w + gap):i * (w + gap) + w] = f
    return img
