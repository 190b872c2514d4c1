"""How the CLI reports failures: a message naming the problem and an exit code, no traceback."""

import logging
import os
import sys
from collections.abc import Callable

from rich.console import Console

from autoperi_app._text import markup_safe

log = logging.getLogger("autoperi")
err_console = Console(stderr=True)


class UserError(Exception):
    """A problem with the user's input or environment; its message is shown as is (exit code 2)."""


def run_guarded(entry: Callable[[], object]) -> None:
    """Run a typer app; turn known errors into one-line messages and exit codes.

    Contract: exit 0 on success, 1 when a command asks for it (e.g. strict mode found rejects),
    2 for user errors (bad path, bad option value, invalid data), 3 for unexpected internal errors
    (the message names the exception; set AUTOPERI_DEBUG=1 to see the traceback). Messages are
    printed with control characters escaped and never read as markup (they quote user files).
    """
    try:
        entry()
    except UserError as exc:
        err_console.print(f"[bold red]error:[/] {markup_safe(str(exc))}")
        sys.exit(2)
    except (FileNotFoundError, IsADirectoryError, PermissionError, ValueError) as exc:
        err_console.print(f"[bold red]error:[/] {markup_safe(str(exc))}")
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("AUTOPERI_DEBUG"):
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {markup_safe(str(exc))} "
            "(set AUTOPERI_DEBUG=1 for a traceback)"
        )
        sys.exit(3)
