"""What a client may see of a failure or of a value it sent: host paths are withheld.

A service's messages name the field that is wrong and repeat the client's value only when it is
not path-like (`shown_value`); text from elsewhere (a worker's exception, another service's
details) passes through `public_text`, which keeps one bounded line with every host path
replaced by `PATH_MARK`. Exceptions often name files (a store root, a temporary directory, a
checkpoint path), and a reply must not tell a client where the service keeps its data.
"""

import re

MAX_CHARS = 300
SHOWN_CHARS = 200
PATH_MARK = "<path>"
WITHHELD = "(path-like value, not repeated)"
_STOP = r"\s'\"`<>|,;()\[\]{}"
# file:// URIs; else absolute, home or relative ('./', '../') paths not inside a word or a URL
_PATH = re.compile(rf"file://[^{_STOP}]*|(?<![\w.~:/-])(?:~|\.{{1,2}})?/[^{_STOP}]+")


def public_text(text: str, limit: int = MAX_CHARS) -> str:
    """The first non-empty line of `text`, each file:// URI or host path in it replaced by
    `PATH_MARK`, cut to `limit` characters. Relative names such as 'loop/2' are kept."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    first = _PATH.sub(PATH_MARK, lines[0]) if lines else ""
    return first[:limit]


def is_path_like(value: str) -> bool:
    """Whether `value` could name a file or a URI: it holds a '/' or a '\\'."""
    return "/" in value or "\\" in value


def shown_value(value: object, limit: int = SHOWN_CHARS) -> str:
    """`value` as a client sent it, for an error message: the repr of a string (of anything
    else) cut to `limit` characters ('...' marks a cut), or `WITHHELD` when path-like."""
    text = value if isinstance(value, str) else repr(value)
    if is_path_like(text):
        return WITHHELD
    cut = text[:limit] + ("..." if len(text) > limit else "")
    return repr(cut) if isinstance(value, str) else cut
