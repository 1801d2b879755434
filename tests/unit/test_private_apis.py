"""The third-party internals statebridge leans on (statebridge/asgi/private.py) still exist.

An upgrade that renames or removes one of them fails here, by name, instead of as a server
that cannot start."""

from __future__ import annotations

import inspect
import socket

from statebridge.asgi.private import GRANIAN_SERVER_INTERNALS, granian_bound_server_class


def test_granians_socket_holder_takes_a_descriptor_and_gives_it_back() -> None:
    from granian._granian import SocketHolder

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        holder = SocketHolder(sock.fileno(), False, 16)  # type: ignore[call-arg]
        assert holder.get_fd() == sock.fileno()


def test_granians_embedded_server_still_has_what_the_subclass_overrides() -> None:
    from granian.server import embed

    source = "".join(inspect.getsource(cls) for cls in embed.Server.__mro__ if cls is not object)
    missing = [name for name in GRANIAN_SERVER_INTERNALS if name not in source]
    assert missing == []
    assert callable(embed.Server._init_shared_socket)
    parameters = inspect.signature(embed.Server.__init__).parameters
    assert {"target", "address", "port", "interface", "backlog"} <= set(parameters)


def test_the_subclass_is_built_on_the_installed_granian() -> None:
    from granian.server import embed

    bound = granian_bound_server_class()
    assert issubclass(bound, embed.Server)
    assert bound._init_shared_socket is not embed.Server._init_shared_socket


def test_typers_completion_internals_give_a_bash_script() -> None:
    from statebridge.asgi.private import typer_completion_script

    script = typer_completion_script("statebridge", "_STATEBRIDGE_COMPLETE", "bash")
    assert "_STATEBRIDGE_COMPLETE" in script and "complete" in script


def test_uvicorns_protocol_still_has_what_the_subclass_overrides() -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from statebridge.asgi.private import UVICORN_PROTOCOL_INTERNALS, uvicorn_envelope_protocol

    source = inspect.getsource(HttpToolsProtocol)
    missing = [name for name in UVICORN_PROTOCOL_INTERNALS if name not in source]
    assert missing == []
    assert "self.send_400_response(" in source  # the parser's refusal still goes through it
    envelope = uvicorn_envelope_protocol([(b"x-instance-id", b"test")])
    assert issubclass(envelope, HttpToolsProtocol)
    assert envelope.send_400_response is not HttpToolsProtocol.send_400_response


def fenced_packages() -> set[str]:
    """The third-party packages private.py imports inside its functions: the fenced uses."""
    import ast
    from pathlib import Path

    import statebridge.asgi.private as private

    tree = ast.parse(Path(private.__file__).read_text())
    packages = set()
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                packages.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                packages.update(alias.name.split(".")[0] for alias in node.names)
    return packages - {"statebridge"}


def test_every_fenced_package_has_an_upper_bound_in_pyproject() -> None:
    """A release outside the tested range may change the internals: pyproject.toml admits
    none, and the bound moves only with a run of this file."""
    import tomllib
    from importlib import metadata

    from packaging.requirements import Requirement

    from tests.support.recordings import ROOT as root

    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    requirements = {
        Requirement(text).name.lower(): Requirement(text) for text in project["dependencies"]
    }
    fenced = fenced_packages()
    assert fenced == {"granian", "uvicorn", "typer"}
    for name in sorted(fenced):
        bounds = [spec for spec in requirements[name].specifier if spec.operator in ("<", "<=")]
        assert bounds, f"{name} needs an upper bound in pyproject.toml (private.py uses internals)"
        tested = metadata.version(name)
        assert requirements[name].specifier.contains(tested), (name, tested)
