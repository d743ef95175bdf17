"""Checks on media before and while it is decoded (pure; no Beam): what the decoder
refuses, and why.

``check_allowed`` (allowed URI schemes and roots), ``check_local_input`` (a regular file
within ``max_bytes``; a FIFO would block the reader), ``local_file_problem`` (why a path is
not a readable file) and ``check_limits`` (channels, pixels, duration from the headers).
Every refusal is a ``MediaDecodeError`` (``MediaLimitError`` for a limit) whose message
names the input and the limit, and becomes the input's dead letter.
"""

from __future__ import annotations

import os
import stat

from sentistream.transforms.config import DEFAULT_SCHEMES, DecodeConfig


class MediaDecodeError(ValueError):
    """The source cannot be decoded: empty, not media, no streams, or a corrupt stream."""


class MediaLimitError(MediaDecodeError):
    """The source is over one of ``DecodeConfig``'s limits (the message names it)."""


def local_file_problem(path: str) -> str | None:
    """Why a local ``path`` cannot be read as media (a directory, a dangling link, a link
    loop, a FIFO that would block the reader, a socket, a device, vanished), or None for a
    regular file."""
    try:
        st = os.stat(path)  # follows links
    except FileNotFoundError:
        return "a link to nothing (dangling symlink)" if os.path.islink(path) else "vanished"
    except OSError as exc:  # ELOOP, EACCES, ENAMETOOLONG, ...
        return f"cannot be inspected ({exc.strerror or type(exc).__name__})"
    if stat.S_ISREG(st.st_mode):
        return None
    kinds = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO (named pipe)"}
    kinds |= {stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a device", stat.S_ISBLK: "a device"}
    return next((name for test, name in kinds.items() if test(st.st_mode)), "not a file")


def check_allowed(uri: str, cfg: DecodeConfig, what: str = "source") -> None:
    """``MediaLimitError`` when ``uri`` uses a scheme outside ``cfg.allowed_schemes`` or,
    local, resolves (links and ``..`` followed) outside every ``cfg.allowed_roots``."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else "file"
    schemes = cfg.allowed_schemes or DEFAULT_SCHEMES
    if scheme not in schemes:
        raise MediaLimitError(
            f"{what} {uri!r} uses the scheme {scheme!r}, not one of the allowed schemes "
            f"{list(schemes)} (--allow-scheme)"
        )
    if scheme != "file" or not cfg.allowed_roots:
        return
    real = os.path.realpath(uri.removeprefix("file://"))
    for root in cfg.allowed_roots:
        base = os.path.realpath(root)
        if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
            return
    raise MediaLimitError(
        f"{what} {uri!r} lies outside the allowed roots {list(cfg.allowed_roots)} (--allow-root)"
    )


def check_local_input(path: str, cfg: DecodeConfig) -> None:
    """Refuse a local input before it is opened: not a regular file, or over ``max_bytes``.

    Raises:
        FileNotFoundError: it does not exist. MediaDecodeError / MediaLimitError: why not.
    """
    if not os.path.lexists(path):
        raise FileNotFoundError(f"source {path!r} not found")
    problem = local_file_problem(path)
    if problem is not None:
        raise MediaDecodeError(f"source {path!r} is {problem}, not a media file")
    size = os.path.getsize(path)
    if size > cfg.max_bytes:
        raise MediaLimitError(
            f"source {path!r} is {size} bytes, over the max_bytes limit of {cfg.max_bytes}"
        )


def check_limits(
    name: str,
    cfg: DecodeConfig,
    *,
    channels: int,
    width: int | None,
    height: int | None,
    duration_s: float | None,
) -> None:
    """``MediaLimitError`` naming the first of ``cfg``'s limits a source's headers exceed."""
    if channels > cfg.max_channels:
        raise MediaLimitError(
            f"source {name!r} has {channels} audio channels, over the max_channels "
            f"limit of {cfg.max_channels}"
        )
    if width and height and width * height > cfg.max_pixels:
        raise MediaLimitError(
            f"source {name!r} is {width}x{height} video, over the max_pixels limit "
            f"of {cfg.max_pixels}"
        )
    if duration_s is not None and duration_s > cfg.max_duration_s:
        raise MediaLimitError(
            f"source {name!r} lasts {duration_s:.0f} s, over the max_duration_s limit "
            f"of {cfg.max_duration_s:.0f}"
        )


def check_live_uri(uri: str, allowed_hosts: tuple[str, ...]) -> None:
    """``MediaLimitError`` unless ``uri`` is a network URL (``LIVE_PROTOCOLS``) whose host
    is in ``allowed_hosts`` (``"*"``: any host). Live URLs are refused by default: an event
    naming a URL would otherwise let any producer point the workers at any address."""
    from urllib.parse import urlsplit

    from sentistream.transforms.config import LIVE_PROTOCOLS

    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in LIVE_PROTOCOLS:
        raise MediaLimitError(
            f"live source {uri!r}: the scheme {scheme or 'none'!r} is not a live protocol "
            f"({', '.join(LIVE_PROTOCOLS)})"
        )
    host = (parts.hostname or "").lower()
    if not allowed_hosts:
        raise MediaLimitError(
            f"live source {uri!r}: live URLs are off; allow its host with --live-host {host}"
        )
    if "*" not in allowed_hosts and host not in {h.lower() for h in allowed_hosts}:
        raise MediaLimitError(
            f"live source {uri!r}: host {host!r} is not one of the allowed live hosts "
            f"{list(allowed_hosts)} (--live-host)"
        )
