"""Rendering the console: autoescaped templates, its own assets, and headers that lock it down.

Every page forbids inline script and style (the Content-Security-Policy allows only this
server's own files), may not be framed, is never cached and sends no referrer. The assets are
a style sheet and one small script that only enhances pages which work without it (the live
timeline); both ship in the package, so the console works offline.

Errors of the services (``KeyfobError``) are shown as a page with the same HTTP status the API
answers with, through ``ConsoleRoute``: another tenant's fleet is a 404 page here as it is a
404 body there.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.text import shown

_env = Environment(
    loader=PackageLoader("keyfob.api.console", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

_STATIC = files("keyfob.api.console") / "static"
ASSETS: dict[str, tuple[bytes, str]] = {
    "console.css": ((_STATIC / "console.css").read_bytes(), "text/css"),
    "console.js": ((_STATIC / "console.js").read_bytes(), "text/javascript"),
}
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MAX_FORM = 16 * 1024
FORM = "application/x-www-form-urlencoded"


class SignInNeeded(Exception):
    """No valid session: the page answers with a redirect to the sign-in page."""


def root(request: Request) -> str:
    """Where the console is mounted, without a trailing slash (``/console`` by default)."""
    return str(request.scope.get("root_path", "")).rstrip("/") + "/console"


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    page = _env.get_template(template).render(console=root(request), **context)
    return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)


def see_other(request: Request, path: str) -> RedirectResponse:
    """303 to a console path: a form post is followed by a GET (no resubmission on reload)."""
    return RedirectResponse(root(request) + path, status_code=303, headers=SECURITY_HEADERS)


def error_page(request: Request, refusal: KeyfobError) -> HTMLResponse:
    return render(
        request,
        "error.html",
        status=refusal.status,
        title=_TITLES.get(refusal.status, "Something went wrong"),
        message=refusal.message,
        code=refusal.code,
    )


_TITLES = {
    400: "This request is not valid",
    403: "Not allowed",
    404: "Not found",
    409: "Not possible right now",
    503: "keyfob is not ready",
}


def asset(name: str) -> Response:
    found = ASSETS.get(name)
    if found is None:
        raise KeyfobError(ErrorCode.NOT_FOUND, f"no console asset {shown(name)}")
    content, media_type = found
    return Response(
        content,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


async def read_form(request: Request) -> dict[str, str]:
    """A small url-encoded form as a mapping (the last value of a repeated name)."""
    mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM:
            raise KeyfobError(ErrorCode.BAD_REQUEST, f"a form is at most {MAX_FORM} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if raw.strip() and mime != FORM:
        raise KeyfobError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, f"a console form is sent as {FORM}")
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise KeyfobError(ErrorCode.BAD_REQUEST, "the form is not UTF-8 form data") from None
    if any("\x00" in name or "\x00" in value for name, value in pairs):
        raise KeyfobError(ErrorCode.BAD_REQUEST, "form fields must not contain U+0000")
    return dict(pairs)


class ConsoleRoute(APIRoute):
    """A console route: refusals become error pages, a missing session the sign-in page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInNeeded:
                return see_other(request, "/login")
            except KeyfobError as refusal:
                return error_page(request, refusal)

        return guarded
