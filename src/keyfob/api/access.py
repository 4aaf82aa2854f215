"""Who is calling and may they: HTTP Basic + ``client_id``, then the partner's rate budget.

One implementation shared by the FastAPI dependency (``api.deps.partner``) and the lean POST
remote path (``api.lean``), so both refuse the same requests with the same errors in the same
order: missing credentials, missing ``client_id``, U+0000 anywhere, wrong credentials, budget.

Credentials not in the cache cost a slow hash, so failed ones are throttled per login and per
client address (``ctx.partner_logins``, ``auth.throttle``): past the limit the answer is 429
42901 with ``Retry-After``, given before the password is looked at.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
from base64 import b64decode
from collections.abc import Iterable, Mapping

from keyfob.auth.service import Partner, authenticate
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.runtime.context import AppContext

NUL = "\x00"
CHALLENGE = {"WWW-Authenticate": 'Basic realm="keyfob"'}


def not_authenticated() -> KeyfobError:
    """An ``Authorization`` header that is not readable HTTP Basic."""
    return KeyfobError(
        ErrorCode.UNAUTHENTICATED, "Not authenticated", headers={"WWW-Authenticate": "Basic"}
    )


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """``(login, password)`` from an ``Authorization: Basic`` header, ``None`` when absent.

    Reads the header exactly as FastAPI's ``HTTPBasic`` does (ASCII, ``login:password``).
    """
    if not authorization:
        return None
    scheme, _, param = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        data = b64decode(param.strip()).decode("ascii")
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise not_authenticated() from None
    login, separator, password = data.partition(":")
    if not separator:
        raise not_authenticated()
    return login, password


def refuse_nul(path_params: Mapping[str, object], query: Iterable[tuple[str, str]]) -> None:
    """Refuse U+0000 in path and query parameters.

    No identifier or parameter of this API holds one and PostgreSQL cannot compare one, so it
    is invalid input (400) rather than a failed query (500).
    """
    for name, value in path_params.items():
        if NUL in str(value):
            raise KeyfobError(ErrorCode.INVALID_PATH_ID, f"path {name}: must not contain U+0000")
    for name, value in query:
        if NUL in name or NUL in value:
            raise KeyfobError(
                ErrorCode.INVALID_QUERY, f"query {name.replace(NUL, '')}: must not contain U+0000"
            )


async def admit(
    ctx: AppContext,
    credentials: tuple[str, str] | None,
    client_id: str | None,
    *,
    path_params: Mapping[str, object],
    query: Iterable[tuple[str, str]],
    address: str | None = None,
) -> tuple[Partner, dict[str, str]]:
    """The authenticated partner and its ``X-RateLimit-*`` headers, or the refusal.

    A verified login is served from ``ctx.credentials`` (no slow hash per request); any other
    is verified under the sign-in throttle, ``address`` being the client's. A request over
    budget raises 429 carrying the same headers.
    """
    if credentials is None:
        raise KeyfobError(
            ErrorCode.UNAUTHENTICATED,
            "send HTTP Basic credentials (Authorization: Basic ...)",
            headers=CHALLENGE,
        )
    if not client_id:
        raise KeyfobError(ErrorCode.UNAUTHENTICATED, "the client_id query parameter is required")
    login, password = credentials
    if NUL in login + password + client_id:
        raise KeyfobError(ErrorCode.BAD_CREDENTIALS)
    refuse_nul(path_params, query)
    found = await verify_partner(
        ctx, login=login, password=password, client_id=client_id, address=address
    )
    limits = ctx.settings.rate_limit
    verdict = ctx.limiter.check(
        found.id,
        day_limit=found.rate_limit_day or limits.day,
        burst_limit=found.rate_limit_burst or limits.burst,
        now=ctx.clock().timestamp(),
    )
    headers = verdict.headers()
    if not verdict.allowed:
        raise KeyfobError(
            ErrorCode.RATE_LIMITED,
            f"request budget exhausted; retry in {verdict.retry_after} s",
            headers=headers,
        )
    return found, headers


async def verify_partner(
    ctx: AppContext, *, login: str, password: str, client_id: str, address: str | None
) -> Partner:
    """The partner these credentials name, from the cache, or hashed under the throttle.

    Also the console's sign-in. Raises 40101 ``BAD_CREDENTIALS``, or 42901
    ``SIGN_IN_THROTTLED`` with ``Retry-After`` before any hash for credentials not cached.
    """
    found = ctx.credentials.get(login, password, client_id)
    if found is not None:
        return found
    # A client's burst after a restart (the cache is empty) sends the same credentials many
    # times at once: one hash, one verdict for all, and one attempt for the throttle.
    key = ctx.credentials.key(login, password, client_id)
    checking = ctx.credentials.checking.get(key)
    if checking is not None:
        with contextlib.suppress(_Abandoned):
            return await asyncio.shield(checking)
    verdict: asyncio.Future[Partner] = asyncio.get_running_loop().create_future()
    verdict.add_done_callback(lambda done: done.cancelled() or done.exception())
    ctx.credentials.checking[key] = verdict
    try:
        found = await _verify_once(ctx, login, password, client_id, address)
    except Exception as problem:
        verdict.set_exception(problem)
        raise
    except BaseException:  # the first caller went away: the others check for themselves
        verdict.set_exception(_Abandoned())
        raise
    else:
        verdict.set_result(found)
        return found
    finally:
        del ctx.credentials.checking[key]


class _Abandoned(Exception):
    """The shared verification stopped without a verdict (its request was cancelled)."""


async def _verify_once(
    ctx: AppContext, login: str, password: str, client_id: str, address: str | None
) -> Partner:
    throttle = ctx.partner_logins
    attempt = throttle.begin(login=login, address=address, now=ctx.clock().timestamp())
    verified: bool | None = None  # no verdict (the database failed): nothing to count
    try:
        async with ctx.database.read() as conn:
            found = await authenticate(
                conn, login=login, password=password, client_id=client_id, cache=ctx.credentials
            )
        verified = True
        return found
    except KeyfobError as refusal:
        if refusal.error is ErrorCode.BAD_CREDENTIALS:
            verified = False
        raise
    finally:
        throttle.end(attempt, now=ctx.clock().timestamp(), verified=verified)
