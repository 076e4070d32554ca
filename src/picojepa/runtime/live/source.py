"""A live source through PyAV (RTSP, RTMP, HTTP/HLS, TCP, UDP, SRT, a camera device): opening it
with a connect and a read deadline, its decoded frames with their stream timestamps, and
reconnecting with backoff when it drops; `clip_rgb`, a frame as the file path's pixels.

torchcodec 0.13 cannot open a stream whose length is unknown, so the live path decodes with
PyAV (FFmpeg's libraries, bundled in its wheel), and converts and resizes frames in FFmpeg's
scaler in the file path's two steps, so that the same frames give the same pixels. The stream
dropping is met by reconnecting with backoff until `reconnect_s` pass without a frame (RTSP,
RTMP, TCP, UDP, SRT and cameras; an HTTP stream or HLS playlist that ends cleanly is over).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Iterator

import numpy as np

from picojepa.core.clips import Region
from picojepa.core.console import one_line
from picojepa.core.errors import PicoJepaError

from .options import LiveOptions, LiveStats

log = logging.getLogger(__name__)
SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "tcp://", "udp://", "srt://")


class LiveError(PicoJepaError, RuntimeError):
    """A live source could not be opened or stopped delivering frames for good."""


def is_live(source: str) -> bool:
    """A URL of a streaming protocol, or a camera device (/dev/videoN)."""
    return source.lower().startswith(SCHEMES) or source.startswith("/dev/video")


def av_module():
    """PyAV, or a LiveError saying how to install it."""
    try:
        import av  # optional extra `live`
    except ImportError:
        raise LiveError("live sources need PyAV: pip install 'picojepa[live]' (or make install)") from None
    return av


def open_source(source: str, opts: LiveOptions):
    """The source opened by PyAV with the options' deadlines, transport and decoder settings."""
    av = av_module()

    kwargs: dict = {"timeout": (opts.connect_timeout_s, opts.connect_timeout_s)}
    if source.startswith("/dev/video"):
        kwargs["format"] = "v4l2"
    if source.lower().startswith(("rtsp://", "rtsps://")):
        kwargs["options"] = {"rtsp_transport": opts.rtsp_transport}
    container = av.open(source, **kwargs)
    if container.streams.video:
        codec = container.streams.video[0].codec_context
        codec.thread_count = opts.decoder_threads
        if opts.decoder_threads != 1:
            codec.thread_type = "AUTO"  # frame and slice threads; camera streams carry one slice
        if opts.skip_frame == "nonref":
            codec.skip_frame = "NONREF"
        if opts.skip_loop_filter:  # read when the decoder opens, at the first packet
            codec.options = {**codec.options, "skip_loop_filter": "all"}
    return container


def _hint(source: str, reason: str, opts: LiveOptions) -> str:
    """What to try when an RTSP server refuses the transport asked for."""
    refused = any(code in reason for code in ("400", "461"))
    if source.lower().startswith("rtsp") and opts.rtsp_transport == "tcp" and refused:
        return "; the server may not carry RTSP over TCP: try --rtsp-transport udp"
    return ""


def clip_rgb(frame, size: int, region: Region | None = None, one_step: bool = False) -> np.ndarray:
    """The frame as uint8 (size, size, 3). By default exactly as torchcodec gives it on the file
    path: colour conversion to RGB at full resolution, the region (if any) cut out of it, then a
    bilinear resize in RGB. `one_step` (no region only): FFmpeg converts and scales in one step
    from the decoder's YUV, without the full-size RGB frame; its pixels differ from the file
    path's by ~2 grey levels on average (chroma is scaled before conversion)."""
    if region is None and one_step:
        return frame.to_ndarray(width=size, height=size, format="rgb24", interpolation="BILINEAR")
    if region is None:  # frame to frame in FFmpeg: no full-size array made or copied (measured)
        rgb = frame.reformat(format="rgb24")
        return rgb.reformat(width=size, height=size, format="rgb24", interpolation="BILINEAR").to_ndarray()
    full = frame.to_ndarray(format="rgb24")
    x0, y0, w, h = region.pixels(full.shape[1], full.shape[0])
    rgb = av_module().VideoFrame.from_ndarray(np.ascontiguousarray(full[y0:y0 + h, x0:x0 + w]), format="rgb24")
    return rgb.to_ndarray(width=size, height=size, format="rgb24", interpolation="BILINEAR")


def _decoded(container, stop: threading.Event, tap=None, stats: LiveStats | None = None):
    """(stream time, frame, ms spent decoding its packet) per decoded frame; the time spent
    waiting for packets from the network is not counted. Frames stay in the decoder's format:
    converting is left to the windows that take them. `tap` (a recorder fed by this reader) is
    told the stream and given every packet, as it is, before it is decoded; `stats` counts the
    decoder's CPU time."""
    if tap is not None:
        tap.opened(container.streams.video[0])
    for packet in container.demux(video=0):
        if stop.is_set():
            return
        if tap is not None:
            tap.packet(packet)
        t0, c0 = time.perf_counter(), time.thread_time()
        got = packet.decode()
        spent = (time.perf_counter() - t0) * 1e3 / max(1, len(got))
        if stats is not None:
            stats.decode_cpu_ms += (time.thread_time() - c0) * 1e3
        for frame in got:
            if frame.time is not None:
                yield float(frame.time), frame, spent


def frames(source: str, opts: LiveOptions, stats: LiveStats, stop: threading.Event, tap=None
           ) -> Iterator[tuple[float, object, float] | None]:
    """(stream time in s, decoded frame (PyAV), decode ms) per decoded frame; None marks a gap (the
    source dropped and was reopened). Corrupt packets are skipped by the decoder. Raises
    LiveError when the source cannot be opened or delivers nothing for `reconnect_s`. `tap`, when
    given, gets the packets too (`_decoded`) and is told when each opening ends: why, or None
    when stopped."""
    av = av_module()

    last_frame, backoff, opened_once = time.monotonic(), 0.5, False
    while not stop.is_set():
        try:
            container = open_source(source, opts)
        except (av.FFmpegError, OSError) as exc:
            reason = one_line(exc, 160)
            if not opened_once and time.monotonic() - last_frame >= opts.connect_timeout_s:
                raise LiveError(f"{source}: could not open the stream within "
                                f"{opts.connect_timeout_s:g} s ({reason}){_hint(source, reason, opts)}") from None
            if opened_once and time.monotonic() - last_frame >= opts.reconnect_s:
                raise LiveError(f"{source}: no frames for {opts.reconnect_s:g} s, reconnecting failed "
                                f"({reason})") from None
            stop.wait(backoff)
            backoff = min(backoff * 2, 5.0)
            continue
        opened_once, backoff, ended = True, 0.5, "the stream ended"
        try:
            for item in _decoded(container, stop, tap, stats):
                stats.frames += 1
                last_frame = time.monotonic()
                yield item
        except (av.FFmpegError, OSError) as exc:
            log.info("%s: %s", source, exc)
            ended = str(exc)
        finally:
            if tap is not None:
                tap.closed(None if stop.is_set() else ended)  # while the stream's parameters are at hand
            container.close()
        if stop.is_set() or not is_live(source) or source.lower().startswith(("http://", "https://")):
            return  # a file, or a playlist or HTTP stream that ended cleanly, is over
        if time.monotonic() - last_frame >= opts.reconnect_s:
            raise LiveError(f"{source}: the stream ended and sent nothing for {opts.reconnect_s:g} s")
        stats.reconnects += 1
        yield None
