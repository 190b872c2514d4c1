"""Text a client sees about a run's failure: one bounded line with every host path withheld.

Worker and Ray Train exceptions often name files (the store root, a worker's temporary
directory, a checkpoint path); run messages and errors pass through `public_text` first.
"""

import re

MAX_CHARS = 300
PATH_MARK = "<path>"
_STOP = r"\s'\"`<>|,;()\[\]{}"
# file:// URIs; else absolute, home or relative ('./', '../') paths not inside a word or a URL
_PATH = re.compile(rf"file://[^{_STOP}]*|(?<![\w.~:/-])(?:~|\.{{1,2}})?/[^{_STOP}]+")


def public_text(text: str, limit: int = MAX_CHARS) -> str:
    """The first non-empty line of `text`, each file:// URI or host path in it replaced by
    `PATH_MARK`, cut to `limit` characters. Relative names such as 'loop/2' are kept."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    first = _PATH.sub(PATH_MARK, lines[0]) if lines else ""
    return first[:limit]
