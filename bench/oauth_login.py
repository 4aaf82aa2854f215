"""Sign the demo end user in through keyfob's own login pages, as a browser would.

The user face's benchmarks need a real access token: this walks ``/am/oauth2/authorize``
(login form, consent form), catches the redirect instead of following it, and exchanges the
code at ``/am/oauth2/access_token`` with the demo OAuth client's Basic credentials.
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import re
import urllib.parse
import urllib.request
from typing import Any

FLOW = re.compile(r'name="flow" value="([^"]*)"')


class _Stop(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def sign_in(root: str, demo: dict[str, Any]) -> dict[str, str]:
    """The demo user's headers for the user face: Bearer token and realm."""
    client, user = demo["oauthClient"], demo["user"]
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _Stop()
    )
    query = urllib.parse.urlencode(
        {
            "client_id": client["clientId"],
            "response_type": "code",
            "redirect_uri": client["redirectUri"],
            "scope": "openid profile",
            "state": "bench",
        }
    )
    page = opener.open(f"{root}/am/oauth2/authorize?{query}", timeout=30).read().decode()

    def post_form(fields: dict[str, str]) -> Any:
        data = urllib.parse.urlencode(fields).encode()
        request = urllib.request.Request(f"{root}/am/oauth2/authorize", data=data, method="POST")
        try:
            return opener.open(request, timeout=30)
        except urllib.error.HTTPError as answer:  # the 302 the redirect handler left alone
            return answer

    login = {"login": user["login"], "password": user["password"], "step": "login"}
    consent = post_form({"flow": _flow(page), **login}).read().decode()
    redirected = post_form({"flow": _flow(consent), "step": "consent", "decision": "allow"})
    location = redirected.headers["Location"]
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]
    secret = base64.b64encode(f"{client['clientId']}:{client['clientSecret']}".encode()).decode()
    exchange = urllib.request.Request(
        f"{root}/am/oauth2/access_token",
        data=urllib.parse.urlencode(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": client["redirectUri"],
            }
        ).encode(),
        headers={"Authorization": f"Basic {secret}"},
        method="POST",
    )
    tokens = json.loads(opener.open(exchange, timeout=30).read())
    return {
        "Authorization": f"Bearer {tokens['access_token']}",
        "x-introspect-realm": client["realm"],
    }


def _flow(page: str) -> str:
    found = FLOW.search(page)
    if found is None:
        raise SystemExit(f"no sign-in form in the page: {page[:300]}")
    return found.group(1)
