"""The sign-in pages: server-rendered HTML that works without JavaScript or anything remote.

Templates ship in the package and are autoescaped. Every page carries a Content-Security-Policy
that allows only this server's style sheet (no inline style or script at all), may not be
framed (clickjacking on a consent button), is never cached, and leaks no referrer (the
authorize URL carries the client's ``state``). A form's ``form-action`` also allows the
client's redirect URI, because browsers apply it to the redirect that follows the POST.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from keyfob.auth.realms import find_realm
from keyfob.auth.scopes import DATA_SCOPES, REMOTE_SCOPES

_env = Environment(
    loader=PackageLoader("keyfob.api.oauth", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

STYLE_SHEET = (files("keyfob.api.oauth") / "static" / "oauth.css").read_bytes()

SCOPE_TEXT = {
    "openid": "Know who you are (your account identifier)",
    "profile": "Read your name and e-mail address",
    "data:telemetry": "Read your vehicles' status: energy, doors, climate",
    "data:position": "Read your vehicles' position",
    "data:trip": "Read your trips",
    "data:alert": "Read your vehicles' alerts",
    "data:collision": "Read collision reports",
    "data:vehicle:devices:pnc": "Read plug-and-charge devices",
    "remote:door:write": "Lock and unlock your vehicles",
    "remote:preconditioning:write": "Heat or cool your vehicles",
    "remote:horn:write": "Sound your vehicles' horn",
    "remote:charging:write": "Start and stop charging",
    "remote:lights:write": "Flash your vehicles' lights",
    "remote:wakeup:write": "Wake your vehicles up to refresh their status",
    "remote:navigation:write": "Send destinations to your vehicles",
}
_ORDER = {name: index for index, name in enumerate(SCOPE_TEXT)}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True, slots=True)
class ScopeLine:
    name: str
    text: str


def scope_lines(scopes: frozenset[str] | set[str] | tuple[str, ...]) -> list[ScopeLine]:
    """What the consent page lists: one line per scope, in a stable, readable order."""
    ordered = sorted(scopes, key=lambda s: (_ORDER.get(s, len(_ORDER)), s))
    return [ScopeLine(s, SCOPE_TEXT.get(s, s)) for s in ordered]


def covers_everything(scopes: frozenset[str]) -> bool:
    return scopes >= (DATA_SCOPES | REMOTE_SCOPES)


def _form_target(redirect_uri: str | None) -> str:
    if not redirect_uri:
        return ""
    parts = urlsplit(redirect_uri)
    if parts.scheme in ("http", "https"):
        return f" {parts.scheme}://{parts.netloc}"
    return f" {parts.scheme}:"


def security_headers(redirect_uri: str | None = None) -> dict[str, str]:
    policy = (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
        f"frame-ancestors 'none'; form-action 'self'{_form_target(redirect_uri)}"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
    }


def render(
    template: str,
    *,
    status: int = 200,
    realm: str | None = None,
    locale: str | None = None,
    root: str = "",
    redirect_uri: str | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """An HTML page with the security headers; ``realm`` picks the brand shown."""
    found = find_realm(realm)
    page = _env.get_template(template).render(
        brand=found.brand if found else "keyfob",
        realm=found.name if found else None,
        lang=(locale or "en").replace("_", "-"),
        root=root,
        **context,
    )
    answer = HTMLResponse(page, status_code=status, headers=security_headers(redirect_uri))
    answer.headers.update(headers or {})
    return answer


def error_page(
    title: str, message: str, *, status: int = 400, hint: str | None = None, **kwargs: Any
) -> HTMLResponse:
    return render("error.html", status=status, title=title, message=message, hint=hint, **kwargs)


def style_sheet() -> Response:
    return Response(
        STYLE_SHEET,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
