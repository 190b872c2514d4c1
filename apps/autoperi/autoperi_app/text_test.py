"""Text from users' files made safe for the terminal: escapes shown, never interpreted."""

import pytest
from rich.console import Console

from autoperi_app._text import cell, markup_safe, printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),  # set the window title
        ("\x1b[2J\x1b[1;1H", "\\x1b[2J\\x1b[1;1H"),  # clear the screen
        ("a\rb\nc\td", "a\\rb\\nc\\td"),  # carriage return hides what came before
        ("\x9b31m", "\\x9b31m"),  # C1 control sequence introducer
        ("evil\u202etxt.cif", "evil\\u202etxt.cif"),  # right-to-left override
        ("caf\udce9", "caf\\udce9"),  # a byte that was not UTF-8 (surrogate escape)
        ("SrTiO3 é α [b]", "SrTiO3 é α [b]"),  # printable text is unchanged
    ],
)
def test_printable_escapes_what_a_terminal_acts_on(raw, shown):
    assert printable(raw) == shown


def test_cells_and_messages_are_never_read_as_markup():
    console = Console(record=True, width=200, color_system=None)
    console.print(cell("[/]x[bold]y"))
    console.print(f"[bold]key:[/] {markup_safe('[/]z[red]w')}")
    assert console.export_text().splitlines() == ["[/]x[bold]y", "key: [/]z[red]w"]
