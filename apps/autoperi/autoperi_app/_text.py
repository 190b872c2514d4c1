"""Text taken from users' files (block names, ids, messages quoting them) made safe to print."""

import unicodedata

from rich.markup import escape
from rich.text import Text

#: control, format (bidi overrides, zero-width), surrogate (undecodable bytes), line and
#: paragraph separator characters: what a terminal acts on or what hides text
_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def printable(text: str) -> str:
    """`text` with each unsafe character shown as its Python escape ("\\x1b", "\\u202e",
    "\\udcff" for an undecodable byte); other characters unchanged. The result holds no
    character a terminal interprets (escape sequences, bell, carriage return)."""
    return "".join(ascii(c)[1:-1] if unicodedata.category(c) in _UNSAFE else c for c in text)


def cell(text: str) -> Text:
    """`printable(text)` as a rich Text, which rich never reads as markup ("[bold]" stays)."""
    return Text(printable(text))


def markup_safe(text: str) -> str:
    """`printable(text)` escaped for insertion into a rich markup string."""
    return escape(printable(text))
