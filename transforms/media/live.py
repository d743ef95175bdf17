"""Decoding a live stream URL as it arrives (HLS, RTSP, RTMP, SRT, ...): the network side
of ``decoding.py`` (which does the decoding itself). No Beam."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import av

from sentistream.models.audio import MEDIA_FORMATS, open_options
from sentistream.transforms.config import LIVE_PROTOCOLS, DecodeConfig, LiveConfig
from sentistream.transforms.media.decoding import (
    LiveStalled,
    MediaChunk,
    MediaInfo,
    decode_container,
    probe,
)
from sentistream.transforms.media.limits import MediaDecodeError, check_limits, check_live_uri

# Demuxers a live URL may use besides the file ones (HLS playlists, RTSP / RTP sessions).
LIVE_FORMATS: tuple[str, ...] = ("hls", "rtsp", "rtp", "sdp", "live_flv")
# Pause between attempts to open a live URL that is not up yet.
LIVE_RETRY_S = 0.5


def iter_live_chunks(
    uri: str, cfg: DecodeConfig, live: LiveConfig
) -> Iterator[MediaInfo | MediaChunk]:
    """Decode a live stream URL (HLS, RTSP, RTMP, SRT, ...) as it arrives: the
    ``MediaInfo``, then ``MediaChunk`` s of ``live.chunk_s`` until the stream ends.

    Times are the stream's own from where the reader joined it (t = 0 is the first packet
    read). Only ``live.allowed_hosts`` may be named (``check_live_uri``). Raises
    ``LiveStalled`` after the chunks so far when no media came for ``live.stall_timeout_s``
    (FFmpeg's read is interrupted), ``MediaLimitError`` past ``live.max_s``.
    """
    check_live_uri(uri, live.allowed_hosts)
    timeout = live.stall_timeout_s
    options = {
        **open_options(MEDIA_FORMATS + LIVE_FORMATS),
        "protocol_whitelist": ",".join(LIVE_PROTOCOLS),
    }
    container = _open_live(uri, options, timeout)
    try:
        info = probe(container)
        check_limits(
            uri, cfg, channels=info.channels, width=info.width, height=info.height, duration_s=None
        )
        yield info
        live_cfg = dataclasses.replace(
            cfg, chunk_s=live.chunk_s, max_duration_s=live.max_s, max_decode_s=2 * live.max_s
        )
        yield from decode_container(container, info, live_cfg, stall_s=timeout)
    except av.ExitError as e:  # the interrupt callback: no data for the read timeout
        raise LiveStalled(
            f"live source {uri!r} stalled: no media for {timeout:.0f} s (stall_timeout_s)"
        ) from e
    finally:
        container.close()


def _open_live(uri: str, options: dict[str, str], timeout: float) -> Any:
    """Open a live URL, trying again for ``timeout`` seconds: a call's stream may not be
    up yet when its event arrives (an HLS playlist appears with its first segment)."""
    give_up = time.monotonic() + timeout
    while True:
        try:
            return av.open(uri, mode="r", options=options, timeout=(timeout, timeout))
        except av.FFmpegError as e:
            if time.monotonic() >= give_up:
                raise MediaDecodeError(
                    f"live source {uri!r} cannot be opened (tried for {timeout:.0f} s): {e}"
                ) from e
            time.sleep(LIVE_RETRY_S)
