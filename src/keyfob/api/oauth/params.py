"""Reading OAuth endpoint parameters and client credentials the ways real clients send them.

Clients put the grant's parameters in a form body, or in the query string with an empty body
(two Home Assistant clients do); ``realm`` rides in the query either way. Both places are read
as one set in which a parameter may appear once (RFC 6749 §3.2). Client credentials come as
HTTP Basic or as ``client_id``/``client_secret`` fields, never both (§2.3.1).
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_plus

from fastapi import Request
from fastapi.responses import JSONResponse

from keyfob.auth.oauth_errors import OAuthError, invalid_client

MAX_FORM = 64 * 1024
"""A token request is a few hundred bytes; a bigger body is refused while it is read."""
FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def error_response(error: OAuthError) -> JSONResponse:
    """RFC 6749 §5.2: ``{"error", "error_description"}``, 401 with a challenge for a client."""
    headers = dict(NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="keyfob", error="invalid_client"'
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def read_form(request: Request) -> list[tuple[str, str]]:
    """The body's ``name=value`` pairs; an empty body is no pairs."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM:
            raise OAuthError("invalid_request", f"the body is larger than {MAX_FORM} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return []
    mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if mime != FORM:
        raise OAuthError("invalid_request", f"send the parameters as {FORM} or in the query")
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not UTF-8 form data") from None
    refuse_nul(pairs)
    return pairs


def refuse_nul(pairs: list[tuple[str, str]]) -> None:
    """No parameter holds U+0000, and PostgreSQL cannot compare one: a 400, not a 500."""
    if any("\x00" in name or "\x00" in value for name, value in pairs):
        raise OAuthError("invalid_request", "parameters must not contain U+0000")


async def read_params(request: Request) -> dict[str, str]:
    """Body and query parameters as one mapping; a repeated name or a U+0000 is refused."""
    found: dict[str, str] = {}
    query = request.query_params.multi_items()
    refuse_nul(query)
    for name, value in [*query, *await read_form(request)]:
        if name in found:
            raise OAuthError("invalid_request", f"the {name} parameter is given more than once")
        found[name] = value
    return found


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    secret: str | None
    """``None`` for a public client, which authenticates with PKCE alone."""
    alternatives: tuple[str, ...] = ()
    """The secret as RFC 6749 §2.3.1 would encode it, when that differs from what was sent."""
    basic: bool = False


def client_credentials(request: Request, params: dict[str, str]) -> ClientCredentials:
    """Who the client says it is; ``invalid_client`` when nothing or two ways are used."""
    header = request.headers.get("authorization")
    form_id, form_secret = params.get("client_id"), params.get("client_secret")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise invalid_client("use HTTP Basic or client_id and client_secret fields")
        if form_secret is not None:
            raise OAuthError("invalid_request", "send the client secret in one place only")
        try:
            decoded = b64decode(value.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise invalid_client("the Authorization header is not valid HTTP Basic") from None
        raw_id, separator, raw_secret = decoded.partition(":")
        if not separator or not raw_id:
            raise invalid_client("the Authorization header is not valid HTTP Basic")
        client_id = unquote_plus(raw_id)
        if form_id is not None and form_id not in (raw_id, client_id):
            raise OAuthError("invalid_request", "client_id differs from the authenticated client")
        unquoted = unquote_plus(raw_secret)
        others = (unquoted,) if unquoted != raw_secret else ()
        return ClientCredentials(client_id, raw_secret, others, basic=True)
    if not form_id:
        raise invalid_client("send client credentials (HTTP Basic, or client_id)")
    return ClientCredentials(form_id, form_secret)
