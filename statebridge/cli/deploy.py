"""`statebridge deploy`: the development certificate and the nginx configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from statebridge.ops.deploy.nginx import (
    INSTALLED,
    NginxOptions,
    RenderError,
    installed_nginx_version,
    render,
)

DEFAULTS = NginxOptions()

deploy_app = typer.Typer(
    help="Deployment helpers: a self-signed TLS certificate and the nginx configuration.",
    no_args_is_help=True,
)


@deploy_app.command("certs")
def certs(
    directory: Annotated[Path, typer.Argument(help="Where to write cert.pem and key.pem")],
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            help="A DNS name or IP address the certificate is for (repeatable) "
            "[default: localhost, 127.0.0.1, ::1]",
        ),
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=3650, help="Days of validity")] = 365,
    force: Annotated[bool, typer.Option("--force", help="Replace existing files")] = False,
) -> None:
    """Create a self-signed certificate for development (existing files are kept)."""
    from statebridge.ops.deploy.certs import create_self_signed

    try:
        files = create_self_signed(directory, host, days=days, force=force)
    except OSError as exc:
        typer.echo(f"statebridge: cannot write certificates in {directory}: {exc}", err=True)
        raise typer.Exit(1) from None
    state = "created" if files.created else "kept existing (use --force to replace)"
    typer.echo(f"{state}: {files.cert} {files.key}")


@deploy_app.command("nginx")
def nginx(
    upstream: Annotated[
        list[str] | None,
        typer.Option(help="A statebridge instance, HOST:PORT (repeatable) [default: app:8000]"),
    ] = None,
    http_port: Annotated[
        int, typer.Option(help="Port that redirects to HTTPS")
    ] = DEFAULTS.http_port,
    https_port: Annotated[
        int, typer.Option(help="HTTPS port (the combined API)")
    ] = DEFAULTS.https_port,
    stateless_port: Annotated[
        int, typer.Option(help="Phase 1 stateless port (HTTP)")
    ] = DEFAULTS.stateless_port,
    stateful_port: Annotated[
        int, typer.Option(help="Phase 1 stateful port (HTTP)")
    ] = DEFAULTS.stateful_port,
    listen: Annotated[
        str, typer.Option(help="Address to listen on, e.g. 127.0.0.1 [default: all]")
    ] = "",
    cert: Annotated[str, typer.Option(help="Certificate path, as nginx sees it")] = DEFAULTS.cert,
    key: Annotated[str, typer.Option(help="Private key path, as nginx sees it")] = DEFAULTS.key,
    rate: Annotated[str, typer.Option(help="Requests per client, e.g. 10r/s")] = DEFAULTS.rate,
    burst: Annotated[
        int, typer.Option(help="Requests allowed above the rate at once")
    ] = DEFAULTS.burst,
    delay: Annotated[
        int, typer.Option(help="Of a burst, how many pass at once; the rest are slowed to the rate")
    ] = DEFAULTS.delay,
    server_name: Annotated[
        str, typer.Option(help="server_name [default: localhost, or _ with --prod]")
    ] = "",
    runtime_dir: Annotated[
        str,
        typer.Option(
            help="Keep pid, temp files and logs in this directory (made if missing) "
            "[default: the nginx image's places]"
        ),
    ] = "",
    prod: Annotated[bool, typer.Option("--prod", help="The production profile")] = False,
    nginx_version: Annotated[
        str,
        typer.Option(
            help="The nginx the render is for (its HTTP/2 switch changed in 1.25.1); "
            "`installed` asks the nginx on PATH"
        ),
    ] = DEFAULTS.nginx_version,
    out: Annotated[str, typer.Option(help="Output file; - for standard output")] = "-",
) -> None:
    """Render nginx.conf from the templates shipped with statebridge."""
    if nginx_version == INSTALLED:
        try:
            nginx_version = installed_nginx_version()
        except RenderError as exc:
            typer.echo(f"statebridge: {exc}", err=True)
            raise typer.Exit(2) from None
    options = NginxOptions(
        upstreams=tuple(upstream or DEFAULTS.upstreams),
        http_port=http_port,
        https_port=https_port,
        stateless_port=stateless_port,
        stateful_port=stateful_port,
        listen_address=listen,
        cert=cert,
        key=key,
        rate=rate,
        burst=burst,
        delay=delay,
        prod=prod,
        server_name=server_name,
        runtime_dir=runtime_dir,
        nginx_version=nginx_version,
    )
    try:
        text = render(options)
    except RenderError as exc:
        typer.echo(f"statebridge: {exc}", err=True)
        raise typer.Exit(2) from None
    if runtime_dir:
        for sub in ("logs", "temp"):
            (Path(runtime_dir) / sub).mkdir(parents=True, exist_ok=True)
    if out == "-":
        typer.echo(text, nl=False)
        return
    Path(out).write_text(text, encoding="utf-8")
