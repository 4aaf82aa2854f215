"""``keyfob serve`` refuses TLS settings it cannot serve: one line naming the setting and the
file, exit status 2, no traceback, and nothing started (no database, no credentials file).

The port given is one the test holds, so a server that started by mistake fails at once
instead of serving for ever.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from keyfob.cli.main import app
from tls_support import Issued, authority


@dataclass(frozen=True)
class Files:
    folder: Path
    server: Issued
    other: Issued  # another certificate of the same CA, so another key
    ca: Path

    def junk(self) -> Path:
        path = self.folder / "junk.pem"
        path.write_text("not a certificate\n")
        return path

    def encrypted_key(self) -> Path:
        key = serialization.load_pem_private_key(self.server.key.read_bytes(), password=None)
        path = self.folder / "encrypted.key"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            )
        )
        return path


@pytest.fixture
def files(tmp_path: Path) -> Files:
    ca = authority(tmp_path, "trusted")
    return Files(tmp_path, ca.issue("server", server=True), ca.issue("other"), ca.bundle)


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture(autouse=True)
def _no_inherited_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("KEYFOB_")]:
        monkeypatch.delenv(name)


def _pair(f: Files) -> list[str]:
    return ["--tls-cert", str(f.server.cert), "--tls-key", str(f.server.key)]


Case = Callable[[Files], tuple[list[str], dict[str, str], str]]
CASES: dict[str, Case] = {
    "certificate without a key": lambda f: (
        ["--tls-cert", str(f.server.cert)],
        {},
        "invalid settings: tls_cert and tls_key must be set together",
    ),
    "required without a CA": lambda f: (
        [*_pair(f), "--tls-client-cert", "required"],
        {},
        "tls_client_cert = required needs tls_client_ca",
    ),
    "a CA while client certificates are off": lambda f: (
        _pair(f),
        {"KEYFOB_TLS_CLIENT_CA": str(f.ca)},
        "tls_client_ca is set but tls_client_cert is none: set it to optional or required",
    ),
    "client certificates without HTTPS": lambda f: (
        ["--tls-client-ca", str(f.ca), "--tls-client-cert", "optional"],
        {},
        "client certificates (tls_client_ca) need tls_cert and tls_key",
    ),
    "an unknown mode": lambda f: (
        [*_pair(f), "--tls-client-ca", str(f.ca), "--tls-client-cert", "sometimes"],
        {},
        "tls_client_cert: Input should be 'none', 'optional' or 'required'",
    ),
    "a missing certificate": lambda f: (
        ["--tls-cert", str(f.folder / "missing.pem"), "--tls-key", str(f.server.key)],
        {},
        f"cannot serve HTTPS: tls_cert {f.folder / 'missing.pem'}: cannot read it "
        "(No such file or directory)",
    ),
    "a key that cannot be read": lambda f: (
        ["--tls-cert", str(f.server.cert), "--tls-key", str(f.folder)],
        {},
        f"cannot serve HTTPS: tls_key {f.folder}: cannot read it (Is a directory)",
    ),
    "the key of another certificate": lambda f: (
        ["--tls-cert", str(f.server.cert), "--tls-key", str(f.other.key)],
        {},
        f"cannot serve HTTPS: tls_key {f.other.key} is not the key of tls_cert {f.server.cert}",
    ),
    "a certificate file that holds none": lambda f: (
        ["--tls-cert", str(f.junk()), "--tls-key", str(f.server.key)],
        {},
        f"cannot serve HTTPS: tls_cert {f.folder / 'junk.pem'}: no PEM certificate in it",
    ),
    "a certificate given as the key": lambda f: (
        ["--tls-cert", str(f.server.cert), "--tls-key", str(f.server.cert)],
        {},
        f"cannot serve HTTPS: tls_key {f.server.cert}: not a PEM private key",
    ),
    "an encrypted key": lambda f: (
        ["--tls-cert", str(f.server.cert), "--tls-key", str(f.encrypted_key())],
        {},
        "the key is encrypted; give it unencrypted",
    ),
    "a CA bundle that holds no certificate": lambda f: (
        [*_pair(f), "--tls-client-ca", str(f.junk()), "--tls-client-cert", "required"],
        {},
        f"cannot serve HTTPS: tls_client_ca {f.folder / 'junk.pem'}: no PEM certificate in it",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_tls_setting_that_cannot_be_served_stops_start_up_with_one_line(
    case: str, files: Files, held_port: int
) -> None:
    options, env, expected = CASES[case](files)
    database, credentials = files.folder / "keyfob.db", files.folder / "demo.json"
    result = CliRunner().invoke(
        app,
        [
            *("serve", "--port", str(held_port), "--vehicles", "1"),
            *("--db", f"sqlite:///{database}", "--credentials-file", str(credentials)),
            *options,
        ],
        env=env,
    )
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.endswith("\n")
    assert "Traceback" not in result.output
    assert not database.exists()
    assert not credentials.exists()
