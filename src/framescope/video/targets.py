"""Where a video goes: the container format and options a URI or path implies."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["NETWORK_SCHEMES", "Target", "resolve_target"]

#: URL schemes of network targets, and the container each is sent in.
NETWORK_SCHEMES = {
    "rtmp": "flv",
    "rtmps": "flv",
    "rtsp": "rtsp",
    "udp": "mpegts",
    "tcp": "mpegts",
    "http": "mpegts",
    "https": "mpegts",
    "whip": "whip",
    "whips": "whip",
}
_FILE_FORMATS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".ts": "mpegts",
    ".flv": "flv",
    ".avi": "avi",
    ".m3u8": "hls",
}
_DEFAULT_OPTIONS = {
    "rtsp": {"rtsp_transport": "tcp"},
    "udp": {"pkt_size": "1316"},
    "hls": {"hls_time": "2", "hls_list_size": "6", "hls_flags": "delete_segments"},
}


@dataclass(frozen=True)
class Target:
    """A resolved output: ``url`` to open, its ``format``, ``options``, and what kind it is.

    ``shown``: the URI to show in logs and reprs (a WHIP bearer token hidden).
    """

    url: str
    format: str
    options: dict[str, str] = field(default_factory=dict)
    network: bool = False
    scheme: str = ""
    shown: str = ""


def resolve_target(uri: object, format: str | None, options: dict[str, str] | None) -> Target:
    """The container and options for ``uri`` (a URL or a file path), checked.

    Raises ValueError naming ``uri`` (or ``format``) when it cannot be written,
    and ImportError naming ``uri`` for a WHIP target (``whip://``,
    ``whips://``, or ``http(s)://`` with ``format="whip"``: see
    :mod:`framescope.video.whip`) when PyAV's FFmpeg has no WHIP muxer.
    """
    if isinstance(uri, Path):
        uri = str(uri)
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError(f"uri must be a URL or a file path, got {uri!r}")
    if format is not None and (not isinstance(format, str) or not format):
        raise ValueError(f"format must be an FFmpeg container name, got {format!r}")
    scheme = urlsplit(uri).scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme = ""
    if scheme and scheme != "file" and scheme not in NETWORK_SCHEMES:
        allowed = ", ".join(f"{name}://" for name in NETWORK_SCHEMES)
        raise ValueError(f"uri: unsupported scheme {scheme!r}; use a file path or {allowed}")
    network = scheme in NETWORK_SCHEMES
    if format == "whip" or NETWORK_SCHEMES.get(scheme) == "whip":
        return _whip(uri, scheme, format, options)
    if network:
        chosen = format or NETWORK_SCHEMES[scheme]
        url = uri
    else:
        path = Path(uri[len("file://") :] if scheme == "file" else uri)
        chosen = format or _FILE_FORMATS.get(path.suffix.lower(), "")
        if not chosen:
            known = ", ".join(sorted(_FILE_FORMATS))
            raise ValueError(
                f"uri: cannot tell the container of {uri!r} from its extension "
                f"(known: {known}); pass format="
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        url = str(path)
    merged = dict(_DEFAULT_OPTIONS.get(scheme if network else chosen, {}))
    if chosen == "hls":
        merged.setdefault("hls_segment_filename", str(Path(url).with_suffix("")) + "_%05d.ts")
    for key, value in (options or {}).items():
        merged[str(key)] = str(value)
    return Target(url, chosen, merged, network, scheme, uri)


def _whip(uri: str, scheme: str, format: str | None, options: dict[str, str] | None) -> Target:
    from framescope.video import whip  # noqa: PLC0415 - only WHIP targets need it

    given = {str(key): str(value) for key, value in (options or {}).items()}
    url, merged, shown = whip.whip_target(uri, scheme, format, given)
    whip.check_whip_muxer(uri)
    whip.warn_without_certificate(shown, merged)
    return Target(url, "whip", merged, True, scheme, shown)
