"""Server URLs given on the command line or in a camera file (NATS, MQTT), checked before
anything connects: a malformed one is the user's typo, said as such, not a server that does not
answer after the connect timeout."""
from __future__ import annotations

from urllib.parse import urlsplit


def url_problem(url: str, schemes: tuple[str, ...], what: str, form: str) -> str | None:
    """Why `url` is not `scheme://[user:password@]host[:port]...` for one of `schemes` (None when
    it is): the scheme, a host, a port in 1-65535 when one is given, no whitespace. `what` names
    such a URL and `form` shows how it is written, for the message."""
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when it is no number in 0-65535
    except ValueError:  # the port, or an unclosed IPv6 bracket
        return f"not {what} ({form})"
    if not url.lower().startswith(tuple(f"{s}://" for s in schemes)) or not parts.hostname or port == 0 \
            or any(c.isspace() for c in url):
        return f"not {what} ({form})"
    return None
