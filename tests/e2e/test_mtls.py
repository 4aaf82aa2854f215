"""HTTPS and mutual TLS on ``keyfob serve``, run as a user runs it.

Each mode gets a real ``keyfob serve`` process on a free loopback port, with a CA, a server
certificate and client certificates made in the test (``tls_support``), and the settings given
the three ways an operator can give them: ``none`` through ``KEYFOB_*`` variables, ``required``
through command-line options, ``optional`` through a settings file. What is asserted is what a
client sees: an answer, or a connection the server ends without one. A client certificate is a
gate only: the partner's Basic credentials are still required behind it.

The server's TLS alert does not reach the client (asyncio closes the connection without
sending it), so a refusal is seen as the connection ending: during the handshake for a TLS 1.2
client, right after it for a TLS 1.3 client, whose certificate is checked once the client's
side of the handshake is over. The same server answering a trusted client in the same test
shows that the refusal is about the certificate.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tls_support import Authority, Issued, authority, client_context

pytestmark = pytest.mark.slow

LOOPBACK = "127.0.0.1"
REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
HANDSHAKE_FAILED = "handshake failed"
NO_ANSWER = "closed without an answer"
REFUSED = {HANDSHAKE_FAILED, NO_ANSWER}


@dataclass(frozen=True)
class Pki:
    trusted: Authority
    other: Authority
    server: Issued
    partner: Issued
    stranger: Issued  # a client certificate signed by a CA the server does not trust

    def client(self, identity: Issued | None = None) -> ssl.SSLContext:
        """A client that trusts the server, presenting ``identity`` when given."""
        return client_context(self.trusted.bundle, identity)


@dataclass(frozen=True)
class Served:
    port: int
    demo: dict[str, Any]

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    trusted, other = authority(folder, "trusted"), authority(folder, "other")
    return Pki(
        trusted=trusted,
        other=other,
        server=trusted.issue("keyfob-server", server=True),
        partner=trusted.issue("MZP128745"),
        stranger=other.issue("MZP999999"),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def keyfob_serve(
    workdir: Path, pki: Pki, *options: str, env: dict[str, str] | None = None
) -> Iterator[Served]:
    """``keyfob serve`` with two simulated cars, until the block ends."""
    workdir.mkdir()
    port = free_port()
    command = [
        *(sys.executable, "-m", "keyfob.cli.main", "serve", "--port", str(port)),
        *("--db", f"sqlite:///{workdir / 'keyfob.db'}", "--vehicles", "2"),
        *("--credentials-file", str(workdir / "demo.json"), *options),
    ]
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("KEYFOB_")}
    log = workdir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env={**inherited, "KEYFOB_SIM_SPEED": "0", **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_served(process, port, pki, log)
        demo = json.loads((workdir / "demo.json").read_text())
        yield Served(port, demo)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_served(process: subprocess.Popen[bytes], port: int, pki: Pki, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"keyfob serve exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        with (
            contextlib.suppress(httpx.TransportError),
            httpx.Client(verify=pki.client(pki.partner)) as client,
        ):
            if client.get(f"https://{LOOPBACK}:{port}/health").status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"keyfob serve did not answer within 60 s:\n{log.read_text()[-3000:]}")


def exchange(port: int, context: ssl.SSLContext) -> str:
    """GET /health over a raw TLS connection: the answer's status line, or how it ended."""
    with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
        try:
            tls = context.wrap_socket(raw, server_hostname=LOOPBACK)
        except (ssl.SSLError, ConnectionError):
            return HANDSHAKE_FAILED
        with tls:
            try:
                tls.sendall(REQUEST)
                head = tls.recv(4096)
            except (ssl.SSLError, ConnectionError):
                head = b""
    return head.split(b"\r\n", 1)[0].decode() or NO_ANSWER


def tls12(context: ssl.SSLContext) -> ssl.SSLContext:
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def fleet(served: Served, client: httpx.Client, *, basic: bool = True) -> httpx.Response:
    """The demo partner reads its fleet on the fleet face, at the credentials file's URL."""
    partner = served.demo["partner"]
    return client.get(
        f"{served.demo['baseUrl']}/fleets/{served.demo['fleetId']}",
        params={"client_id": partner["clientId"]},
        auth=(partner["login"], partner["password"]) if basic else None,
    )


@pytest.fixture(scope="module")
def https_only(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    env = {"KEYFOB_TLS_CERT": str(pki.server.cert), "KEYFOB_TLS_KEY": str(pki.server.key)}
    with keyfob_serve(tmp_path_factory.mktemp("none") / "run", pki, env=env) as served:
        yield served


@pytest.fixture(scope="module")
def required(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    options = (
        *("--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key)),
        *("--tls-client-ca", str(pki.trusted.bundle), "--tls-client-cert", "required"),
    )
    with keyfob_serve(tmp_path_factory.mktemp("required") / "run", pki, *options) as served:
        yield served


@pytest.fixture(scope="module")
def optional(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("optional")
    config = folder / "keyfob.toml"
    config.write_text(
        f'tls_cert = "{pki.server.cert}"\ntls_key = "{pki.server.key}"\n'
        f'tls_client_ca = "{pki.trusted.bundle}"\ntls_client_cert = "optional"\n'
    )
    with keyfob_serve(folder / "run", pki, "--config", str(config)) as served:
        yield served


def test_https_serves_both_faces_and_the_demo_urls_say_https(pki: Pki, https_only: Served) -> None:
    assert https_only.demo["baseUrl"] == f"{https_only.url}/connectedcar/v3"
    assert https_only.demo["userBaseUrl"] == f"{https_only.url}/connectedcar/v4"
    assert https_only.demo["oauthBaseUrl"] == f"{https_only.url}/am/oauth2"
    with httpx.Client(verify=pki.client()) as client:
        assert client.get(f"{https_only.url}/health").status_code == 200
        answer = fleet(https_only, client)
        assert answer.status_code == 200
        assert answer.json()["_links"]["self"]["href"].startswith(f"{https_only.url}/")
        discovery = client.get(f"{https_only.url}/.well-known/openid-configuration")
        assert discovery.status_code == 200
    assert exchange(https_only.port, pki.client()) == "HTTP/1.1 200 OK"


def test_plain_http_and_tls_older_than_1_2_are_not_served(pki: Pki, https_only: Served) -> None:
    with httpx.Client() as client, pytest.raises(httpx.TransportError):
        client.get(f"http://{LOOPBACK}:{https_only.port}/health")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # naming TLS 1.1 at all warns
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(pki.trusted.bundle)
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that the client itself would offer it
    assert exchange(https_only.port, old) == HANDSHAKE_FAILED
    assert exchange(https_only.port, tls12(pki.client())) == "HTTP/1.1 200 OK"


def test_required_refuses_clients_without_a_trusted_certificate(pki: Pki, required: Served) -> None:
    assert exchange(required.port, pki.client()) in REFUSED
    assert exchange(required.port, pki.client(pki.stranger)) in REFUSED
    # Over TLS 1.2 the certificate is checked inside the handshake itself.
    assert exchange(required.port, tls12(pki.client())) == HANDSHAKE_FAILED
    assert exchange(required.port, tls12(pki.client(pki.stranger))) == HANDSHAKE_FAILED
    with httpx.Client(verify=pki.client()) as client, pytest.raises(httpx.TransportError):
        client.get(f"{required.url}/health")

    assert exchange(required.port, pki.client(pki.partner)) == "HTTP/1.1 200 OK"
    assert exchange(required.port, tls12(pki.client(pki.partner))) == "HTTP/1.1 200 OK"


def test_required_lets_a_trusted_certificate_through_to_basic_authentication(
    pki: Pki, required: Served
) -> None:
    with httpx.Client(verify=pki.client(pki.partner)) as client:
        assert client.get(f"{required.url}/health").json()
        answer = fleet(required, client)
        assert answer.status_code == 200
        assert answer.json()["id"] == required.demo["fleetId"]
        # The certificate opens the connection, not the fleet: Basic is still required.
        unsigned = fleet(required, client, basic=False)
        assert unsigned.status_code == 401
        assert unsigned.json()["code"] == 40100


def test_optional_serves_clients_with_or_without_a_certificate_but_not_a_foreign_one(
    pki: Pki, optional: Served
) -> None:
    assert exchange(optional.port, pki.client()) == "HTTP/1.1 200 OK"
    assert exchange(optional.port, pki.client(pki.partner)) == "HTTP/1.1 200 OK"
    assert exchange(optional.port, pki.client(pki.stranger)) in REFUSED
    assert exchange(optional.port, tls12(pki.client(pki.stranger))) == HANDSHAKE_FAILED
    for identity in (None, pki.partner):
        with httpx.Client(verify=pki.client(identity)) as client:
            assert fleet(optional, client).status_code == 200
