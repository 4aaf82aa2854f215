"""Entry point of the ``keyfob`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

import keyfob
from keyfob.cli import admin, db, roles_cli
from keyfob.cli.checks import check_all
from keyfob.cli.defaults import setting, shown
from keyfob.cli.logs import Format, Level, LogFormatOption, LogLevelOption, setup
from keyfob.cli.settings import build_settings
from keyfob.config import Settings
from keyfob.kit import loops
from keyfob.runtime.tls import TlsFiles, TlsSetupError, harden, tls_files

app = typer.Typer(
    help="keyfob: remote commands for connected vehicles, with webhook notifications.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: rich's showed flags as taking a <bool> and cut names
)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"keyfob {keyfob.__version__}")
        raise typer.Exit


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """keyfob: remote commands for connected vehicles, with webhook notifications."""


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help=f"Address to listen on.  {setting('host')}")
    ] = None,
    port: Annotated[int | None, typer.Option(help=f"Port to listen on.  {setting('port')}")] = None,
    db_url: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="sqlite:///relative.db, sqlite:////abs.db or postgresql://...  " + setting("db"),
        ),
    ] = None,
    vehicles: Annotated[
        int | None,
        typer.Option(
            help=f"Simulated vehicles provisioned on an empty database.  {setting('vehicles')}"
        ),
    ] = None,
    credentials_file: Annotated[
        Path | None,
        typer.Option(
            help=f"Where the demo credentials are written.  {setting('credentials_file')}"
        ),
    ] = None,
    mqtt: Annotated[
        str | None,
        typer.Option(
            help=f"mqtt://user:pass@host:port of a broker.  {shown('the in-memory link')}"
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="A TOML settings file (see settings.example.toml).")
    ] = None,
    allow_private_webhooks: Annotated[
        bool | None,
        typer.Option(
            "--allow-private-webhooks",
            help="Allow webhooks on loopback and private addresses (local development).",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(help="PEM certificate (chain) to serve HTTPS with; needs --tls-key."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="The certificate's PEM private key (unencrypted).")
    ] = None,
    tls_client_ca: Annotated[
        Path | None, typer.Option(help="PEM bundle of the CAs that sign client certificates.")
    ] = None,
    tls_client_cert: Annotated[
        str | None,
        typer.Option(help=f"Client certificates: none, optional or required.  {shown('none')}"),
    ] = None,
    log_level: LogLevelOption = Level.INFO,
    log_format: LogFormatOption = Format.TEXT,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            envvar="KEYFOB_ACCESS_LOG",
            help="One line per HTTP request, at INFO.",
        ),
    ] = True,
) -> None:
    """Serve the API with every role in one process (embedded default: SQLite, in-memory link)."""
    from keyfob.api.app import create_app
    from keyfob.api.streams import Server
    from keyfob.runtime.roles import embedded_roles

    settings = build_settings(
        config,
        host=host,
        port=port,
        db=db_url,
        vehicles=vehicles,
        credentials_file=credentials_file,
        mqtt=mqtt,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_client_ca=tls_client_ca,
        tls_client_cert=tls_client_cert,
    )
    if allow_private_webhooks:
        settings.delivery.allow_private_webhooks = True
    try:
        tls = tls_files(settings)
    except TlsSetupError as problem:
        typer.echo(f"cannot serve HTTPS: {problem}", err=True)
        raise typer.Exit(2) from None
    check_all(settings, listen=True)  # before migrations, demo credentials and roles
    setup(log_level, log_format)
    application = create_app(settings, roles=embedded_roles(settings))
    server = server_config(
        application, settings, tls, log_level=log_level.value, access_log=access_log
    )
    loops.run(Server(server).serve())  # ends the open event streams on shutdown


def server_config(
    application: Any,
    settings: Settings,
    tls: TlsFiles | None,
    *,
    log_level: str = "info",
    access_log: bool = True,
) -> uvicorn.Config:
    """uvicorn's settings for ``serve``: HTTPS (TLS 1.2 or later) and client certificates when
    ``tls`` is given. Loaded here, so that its TLS context can be hardened before serving.
    uvicorn installs no log handlers of its own (``log_config=None``): its loggers propagate
    to the one ``kit.logs.configure`` set up, in the chosen format. HTTP is uvicorn's httptools
    protocol with the 16 KiB limit on request heads (``api.head_limit``, decision 33)."""
    from keyfob.api.head_limit import HeadLimitedProtocol

    options: dict[str, Any] = {}
    if tls is not None:
        options = {
            "ssl_certfile": tls.cert,
            "ssl_keyfile": tls.key,
            "ssl_ca_certs": tls.client_ca,
            "ssl_cert_reqs": tls.verify_mode,
        }
    config = uvicorn.Config(
        application,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        log_config=None,
        access_log=access_log,
        http=HeadLimitedProtocol,
        **options,
    )
    config.load()
    if config.ssl is not None:
        harden(config.ssl)
    return config


@app.command("env")
def demo_env(
    credentials_file: Annotated[
        Path, typer.Option(help="The credentials file `keyfob serve` wrote.")
    ] = Path("keyfob-demo.json"),
    vehicle: Annotated[
        int, typer.Option(help="Which demo vehicle KF_VEHICLE names (0-based).")
    ] = 0,
) -> None:
    """Print shell exports of the demo credentials: eval "$(keyfob env)".

    The fleet face: KF_API, KF_AUTH, KF_CLIENT, KF_FLEET, KF_VEHICLE, KF_VIN. The user face:
    KF_API4, KF_OAUTH, KF_USER, KF_USER_PASSWORD, KF_USER_VEHICLE, KF_OAUTH_CLIENT,
    KF_OAUTH_SECRET, KF_REDIRECT, KF_REALM, KF_SCOPE.
    """
    import json
    import shlex

    try:
        demo = json.loads(credentials_file.read_text(encoding="utf-8"))
        chosen = demo["vehicles"][vehicle]
    except (OSError, ValueError, KeyError, IndexError) as exc:
        typer.echo(f"cannot read demo credentials from {credentials_file}: {exc}", err=True)
        raise typer.Exit(1) from None
    partner = demo["partner"]
    exports = {
        "KF_API": demo["baseUrl"],
        "KF_AUTH": f"{partner['login']}:{partner['password']}",
        "KF_CLIENT": partner["clientId"],
        "KF_FLEET": demo["fleetId"],
        "KF_VEHICLE": chosen["vid"],
        "KF_VIN": chosen["vin"],
    }
    exports.update(_user_face_exports(demo))
    for name, value in exports.items():
        typer.echo(f"export {name}={shlex.quote(value)}")


def _user_face_exports(demo: dict[str, Any]) -> dict[str, str]:
    """The demo end user and their OAuth client, when the file has them (files written
    before the user face have not)."""
    user, client = demo.get("user"), demo.get("oauthClient")
    if not isinstance(user, dict) or not isinstance(client, dict):
        return {}
    owned = user.get("vehicles") or [{}]
    return {
        "KF_API4": demo["userBaseUrl"],
        "KF_OAUTH": demo["oauthBaseUrl"],
        "KF_USER": user["login"],
        "KF_USER_PASSWORD": user["password"],
        "KF_USER_VEHICLE": owned[0].get("id", ""),
        "KF_OAUTH_CLIENT": client["clientId"],
        "KF_OAUTH_SECRET": client["clientSecret"],
        "KF_REDIRECT": client["redirectUri"],
        "KF_REALM": client["realm"],
        "KF_SCOPE": " ".join(client["scopes"]),
    }


# Listed in this order by ``keyfob --help``: serve and env above (defined first), then these.
app.command()(roles_cli.listen)
app.command()(roles_cli.sim)
app.command()(roles_cli.dispatcher)
app.command()(roles_cli.worker)
app.add_typer(db.app, name="db")
app.add_typer(admin.app, name="admin")


if __name__ == "__main__":  # pragma: no cover
    app()
