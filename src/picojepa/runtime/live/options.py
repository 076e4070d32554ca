"""What a live reader is asked to do (`LiveOptions`: windows, deadlines, decoder settings) and
what it counts as it goes (`LiveStats`: frames, windows, drops, gaps)."""
from __future__ import annotations

from dataclasses import dataclass, field

from picojepa.core.clips import Region


@dataclass(frozen=True)
class LiveOptions:
    window_s: float = 2.0
    stride_s: float | None = None  # None: windows back to back
    duration_s: float | None = None  # stop after this long (wall clock); None: until the stream ends
    connect_timeout_s: float = 10.0  # to open the source, and to wait for each read
    reconnect_s: float = 30.0  # give up after this long without a frame, reconnecting meanwhile
    # RTSP over TCP by default (no loss, one connection through NAT); 'udp' for servers and
    # cameras that only send RTP over UDP
    rtsp_transport: str = "tcp"
    # FFmpeg decoder threads per stream (0: FFmpeg's choice); with many streams on few cores one
    # each is measured best (frame threads add a frame of delay per thread and contend)
    decoder_threads: int = 1
    # 'nonref': FFmpeg skips decoding non-reference frames (B-frames that nothing refers to):
    # cheaper, but the window then holds fewer frames and its clip spans more time
    skip_frame: str = "none"
    region: Region | None = None  # only this part of each frame is classified (core.clips.Region)
    # H.264 (and HEVC) decoding without the deblocking (loop) filter: cheaper; the pixels differ
    # slightly from the file path's, which a classifier of small clips does not notice
    skip_loop_filter: bool = False
    # the motion gate's threshold (motion.MotionGate: % of the picture changed between picked
    # frames); a window under it is answered 'no motion' unconverted and unclassified. None: off
    motion_gate: float | None = None
    # a clip frame converted from the decoder's YUV to RGB at the clip's size in one FFmpeg
    # (swscale) step, instead of RGB at full size first and then resized as the file path does:
    # cheaper at camera sizes; the pixels differ by a few grey levels (source.clip_rgb)
    one_step_convert: bool = False

    @property
    def stride(self) -> float:
        return self.stride_s or self.window_s


@dataclass
class LiveStats:
    windows: int = 0
    dropped: int = 0
    reconnects: int = 0
    gaps: list = field(default_factory=list)  # [{"after_s", "wall_time", "reason"}]
    frames: int = 0  # decoded
    converted: int = 0  # converted to RGB and resized: only the frames a window's clip takes
    no_motion: int = 0  # windows the motion gate answered 'no motion' (not classified)
    repicked: int = 0  # windows whose frames were not on the stream's frame grid (see windows.Pending.picked)
    # CPU time of the reading thread (ms), by step: decoding, converting clip frames, the motion gate
    decode_cpu_ms: float = 0.0
    convert_cpu_ms: float = 0.0
    gate_cpu_ms: float = 0.0
