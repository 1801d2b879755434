"""Every use of a third-party API that is not public, fenced in one place.

Granian's embedded server binds its own socket; statebridge binds first (a busy port fails
fast, forked workers share one listener) and hands Granian a duplicate of the listener. That
leans on Granian internals: `granian._granian.SocketHolder` and the attributes that
`embed.Server._init_shared_socket` sets (`_shd`, `_sfd`, `_ssp`). pyproject.toml bounds
Granian to a tested range, and tests/unit/test_private_apis.py fails loudly when an upgrade
changes any of them.

Typer has no public name for its shell-completion classes and scripts either; the command
line's `completion` uses them through the two functions at the end.
"""

from __future__ import annotations

import os
import socket
from typing import Any

# what the subclass below overrides or sets, checked by the upgrade test
GRANIAN_SERVER_INTERNALS = ("_init_shared_socket", "_shd", "_sfd", "_ssp")


def granian_bound_server_class() -> Any:
    """Granian's embedded server, serving on a socket bound elsewhere."""
    from granian._granian import SocketHolder
    from granian.server import embed

    holder: Any = SocketHolder  # its stub leaves out the constructor
    base: Any = embed.Server

    class BoundServer(base):  # type: ignore[misc]
        """Granian's embedded server on a socket bound elsewhere."""

        def __init__(self, sock: socket.socket, **options: Any) -> None:
            self.bound_fd = sock.fileno()
            super().__init__(**options)

        def _init_shared_socket(self) -> None:
            self._shd = holder(os.dup(self.bound_fd), False, self.backlog)
            self._sfd = self._shd.get_fd()
            self._ssp = None

    return BoundServer


def typer_completion_init() -> None:
    """Register Typer's completion classes with Click (what `add_completion` would do)."""
    from typer._completion_classes import completion_init

    completion_init()


def typer_completion_script(prog_name: str, complete_var: str, shell: str) -> str:
    """The script a shell sources to complete `prog_name`."""
    from typer._completion_shared import get_completion_script

    typer_completion_init()
    return get_completion_script(prog_name=prog_name, complete_var=complete_var, shell=shell)
