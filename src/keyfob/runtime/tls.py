"""HTTPS and client certificates for ``keyfob serve``: the files checked before start-up.

A wrong path, a key that belongs to another certificate or a CA bundle with no certificate in
it should stop the server with one line that names the setting and the file, before anything
else starts. The server's TLS library says far less (``[SSL] PEM lib``, an ``OSError``
without a file name from deep inside uvicorn, or for an encrypted key a passphrase prompt on
the terminal). So each file is read and parsed here first
(with ``cryptography``), and then the same ``ssl`` context the server will build is built once,
so that whatever the TLS library still refuses is also reported before start-up.

Mutual TLS is a gate on the transport: a connection without an acceptable certificate never
reaches the application, and who the caller is is still decided by HTTP Basic (partners) or a
Bearer token (apps). The certificate's subject is not mapped to a caller: uvicorn's HTTP
protocols put neither the connection's transport nor the ASGI ``tls`` extension in the request
scope, so the application never sees the peer certificate.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from keyfob.config import Settings

ClientCertMode = Literal["none", "optional", "required"]
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
_VERIFY_MODES: dict[ClientCertMode, ssl.VerifyMode] = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class TlsSetupError(Exception):
    """A TLS file that cannot be served; the message is one line naming the setting."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Checked files: what the HTTP server is given."""

    cert: Path
    key: Path
    client_ca: Path | None
    client_cert: ClientCertMode

    @property
    def verify_mode(self) -> ssl.VerifyMode:
        return _VERIFY_MODES[self.client_cert]


def tls_files(settings: Settings) -> TlsFiles | None:
    """The checked TLS files of ``settings``, or None when it serves plain HTTP.

    Raises ``TlsSetupError`` for a file that cannot be read or parsed, a key that is not the
    certificate's, or one the TLS library refuses.
    """
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    files = TlsFiles(
        settings.tls_cert, settings.tls_key, settings.tls_client_ca, settings.tls_client_cert
    )
    certificate = _certificates("tls_cert", files.cert)[0]
    key = _private_key(files.key)
    if _public(key) != certificate.public_key().public_bytes(*_SPKI):
        raise TlsSetupError(f"tls_key {files.key} is not the key of tls_cert {files.cert}")
    if files.client_ca is not None:
        _certificates("tls_client_ca", files.client_ca)
    try:
        server_context(files)
    except (ssl.SSLError, OSError) as refused:
        raise TlsSetupError(f"the TLS library refuses these files: {refused}") from None
    return files


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """The context the server accepts connections with (the one uvicorn builds, hardened)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert, files.key)
    context.verify_mode = files.verify_mode
    if files.client_ca is not None:
        context.load_verify_locations(files.client_ca)
    harden(context)
    return context


def harden(context: ssl.SSLContext) -> None:
    """No protocol older than TLS 1.2, whatever the platform's default."""
    if context.minimum_version < MINIMUM_VERSION:
        context.minimum_version = MINIMUM_VERSION


def _read(setting: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsSetupError(f"{setting} {path}: cannot read it ({exc.strerror or exc})") from None


def _certificates(setting: str, path: Path) -> list[x509.Certificate]:
    try:
        found = x509.load_pem_x509_certificates(_read(setting, path))
    except ValueError:
        found = []
    if not found:
        raise TlsSetupError(f"{setting} {path}: no PEM certificate in it")
    return found


def _private_key(path: Path) -> PrivateKeyTypes:
    data = _read("tls_key", path)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise TlsSetupError(f"tls_key {path}: the key is encrypted; give it unencrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise TlsSetupError(f"tls_key {path}: not a PEM private key") from None


def _public(key: PrivateKeyTypes) -> bytes:
    return key.public_key().public_bytes(*_SPKI)
