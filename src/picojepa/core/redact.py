"""Credentials never reach a message or a log line: URLs are shown with their secrets masked.

Cameras and message servers take credentials in the URL (rtsp://admin:secret@10.0.0.7/main,
nats://user:password@host:4222, nats://TOKEN@host, ...?password=secret); every place that names
a source or a server in an error, a log record, a summary or a published result goes through
`redact` first.
"""
from __future__ import annotations

import re

# scheme://[user[:password]@]host...: the user-info part, whatever it holds
# (one slash too: a URL that became a path, `Path("http://u:p@h")` is `http:/u:p@h`)
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*:/{1,2})(?P<info>[^/\s?]*)@")  # to the last @
# a password typed with a raw '/' (rtsp://admin:pa/ss@cam): user, ':', then up to the token's next
# '@'. Digits before the '/' read as a port (rtsp://cam:554/ch1@main is a host, a port and a path),
# and a password that itself holds '@' and '/' is not caught: such URLs do not work either, as the
# first '/' ends the authority; they are masked where they can be told from a path.
_SLASHED = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*:/{1,2})(?P<user>[^/\s?:@]*):(?!\d*/)[^\s@/]*/[^\s@]*@")
_QUERY = re.compile(r"(?P<key>[?&;](?:password|passwd|pass|pwd|token|secret|auth|key|api_key)=)[^&;#\s]*",
                    re.IGNORECASE)
MASK = "***"


def redact(text: str) -> str:
    """`text` with every URL's user info and every secret-looking query value masked: the user
    name is kept where a password follows it (nats://user:***@host), a lone token is masked."""

    def info(m: re.Match) -> str:
        user, sep, _ = m["info"].partition(":")
        return f"{m['scheme']}{user}:{MASK}@" if sep else f"{m['scheme']}{MASK}@"

    text = _SLASHED.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", str(text))
    return _QUERY.sub(lambda m: m["key"] + MASK, _USERINFO.sub(info, text))
