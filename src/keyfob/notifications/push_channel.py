"""Push callbacks (§3.2): each ``Message`` goes to every device token of the callback through
the FCM HTTP v1 API, in the "basic notification" shape.

    POST {fcm_url}/v1/projects/{project}/messages:send      Authorization: Bearer <token>
    {"message": {"token": <device>,
                 "data": {<Header attributes>, "mph_message": <base64 of the Message JSON>},
                 "notification": {"title": <remote label or type>, "body": <type: status>},
                 "android": {...}, "apns": {...}}}          (from the keyword attributes)

The bearer comes from the operator's service-account key: a JWT assertion signed with its
private key (RS256) is exchanged at the key's token endpoint, and the access token is kept
until a minute before it expires (or until FCM answers 401).

The keyword attributes of §3.2 shape the FCM message instead of travelling in ``data``:
``disableNotificationPayload``, ``deliveryPriority``, ``ttl``, ``title``, ``body``, ``image``,
``sound``, ``clickAction``, ``tag``, ``icon``, ``bodyLocKey``, ``bodyLocArgs``, ``titleLocKey``,
``titleLocArgs`` (Android), ``badge``, ``mutable``, ``contentAvailable`` (iOS).

An attempt is delivered when every device took every message, or was reported unregistered
(404, or ``UNREGISTERED``): those tokens are returned to the worker, which removes them from
the callback and deletes a callback left with none. Any other failure fails the attempt, which
is retried like a webhook's; a device that already took a message may then get it again.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from keyfob.callbacks.user_schemas import UserCallbackSubscribe
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.notifications.metrics import DeliveryMetrics
from keyfob.notifications.outcome import Outcome, classify, excerpt
from keyfob.notifications.user_delivery import UserMessage

if TYPE_CHECKING:  # loaded by the first push: most deployments never need it
    import aiohttp

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_EARLY_S = 60
"""An access token is renewed this long before it expires."""

_ANDROID_KEYS = {
    "sound": "sound",
    "clickAction": "click_action",
    "tag": "tag",
    "icon": "icon",
    "bodyLocKey": "body_loc_key",
    "titleLocKey": "title_loc_key",
}
_ANDROID_LISTS = {"bodyLocArgs": "body_loc_args", "titleLocArgs": "title_loc_args"}
_KEYWORDS = frozenset(
    {
        "disableNotificationPayload",
        "deliveryPriority",
        "ttl",
        "title",
        "body",
        "image",
        "badge",
        "mutable",
        "contentAvailable",
        *_ANDROID_KEYS,
        *_ANDROID_LISTS,
    }
)


def _client_error() -> type[BaseException]:
    """aiohttp's base error, for the ``except`` around a push (which has loaded aiohttp)."""
    import aiohttp

    return aiohttp.ClientError


@dataclass(frozen=True, slots=True)
class PushConfig:
    """Where FCM is and who keyfob is to it (from the service-account key file)."""

    fcm_url: str
    project_id: str
    client_email: str
    private_key: RSAKey
    key_id: str | None
    token_url: str
    timeout: float = 10.0


def load_push_config(
    key_file: Path,
    *,
    fcm_url: str,
    project_id: str | None = None,
    token_url: str | None = None,
    timeout: float = 10.0,
) -> PushConfig:
    """Read a Google service-account key (JSON); settings override its project and endpoint."""
    try:
        key = json.loads(key_file.read_text(encoding="utf-8"))
        private_key = RSAKey.import_key(key["private_key"])
        email = str(key["client_email"])
    except (OSError, ValueError, KeyError, TypeError, JoseError) as error:
        raise KeyfobError(
            ErrorCode.BAD_REQUEST, f"push: cannot read the service-account key {key_file}: {error}"
        ) from error
    if not private_key.is_private:
        raise KeyfobError(ErrorCode.BAD_REQUEST, f"push: {key_file} holds no private key")
    project = project_id or key.get("project_id")
    endpoint = token_url or key.get("token_uri")
    if not project or not endpoint:
        raise KeyfobError(
            ErrorCode.BAD_REQUEST,
            f"push: {key_file} names no project_id or token_uri; set push.project_id and "
            "push.token_url",
        )
    return PushConfig(
        fcm_url=fcm_url.rstrip("/"),
        project_id=str(project),
        client_email=email,
        private_key=private_key,
        key_id=key.get("private_key_id"),
        token_url=str(endpoint),
        timeout=timeout,
    )


@dataclass(frozen=True, slots=True)
class Pushed:
    outcome: Outcome
    unregistered: list[str] = field(default_factory=list)


class _Failed(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.detail)
        self.outcome = outcome


class PushChannel:
    """Sends messages to FCM; create and use it inside one running event loop."""

    def __init__(
        self,
        config: PushConfig,
        *,
        now: Callable[[], float] = time.time,
        metrics: DeliveryMetrics | None = None,
    ) -> None:
        self._config = config
        self._now = now
        self._metrics = metrics
        self._session: aiohttp.ClientSession | None = None
        self._bearer: tuple[str, float] | None = None
        self._bearer_lock = asyncio.Lock()
        self._send_url = f"{config.fcm_url}/v1/projects/{config.project_id}/messages:send"

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            import aiohttp  # here: only a deployment with push callbacks loads it

            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._config.timeout),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def send(
        self, subscribe: UserCallbackSubscribe, messages: Sequence[UserMessage]
    ) -> Pushed:
        """One attempt: every message, in order, to every device of the callback."""
        started = time.perf_counter()
        unregistered: list[str] = []
        last: Outcome | None = None
        taken: Outcome | None = None  # the last message a device took
        try:
            for token in subscribe.devices:
                for item in messages:
                    last = await self._post(_fcm_message(token, item), started)
                    if last.status_code == 404 or _unregistered(last):
                        unregistered.append(token)
                        break
                    if not last.delivered:
                        raise _Failed(last)
                    taken = last
        except _Failed as failed:
            return Pushed(self._observed(failed.outcome), unregistered)
        if taken is None:
            outcome = Outcome(
                delivered=False,
                status_code=last.status_code if last else None,
                error_class="unregistered",
                latency_ms=_since(started),
                response_excerpt=last.response_excerpt if last else None,
                detail="no device token of this callback is registered any more",
            )
            return Pushed(self._observed(outcome), unregistered)
        return Pushed(self._observed(taken), unregistered)

    async def _post(self, body: dict[str, Any], started: float) -> Outcome:
        bearer = await self._token(started)
        try:
            async with self._client().post(
                self._send_url,
                json={"message": body},
                headers={"Authorization": f"Bearer {bearer}"},
                allow_redirects=False,
            ) as response:
                answer = await response.read()
                if response.status == 401:
                    self._bearer = None  # revoked or expired early: fetch a new one next time
                return classify(status=response.status, body=answer, latency_ms=_since(started))
        except (_client_error(), OSError, TimeoutError, ValueError) as error:
            return classify(error=error, latency_ms=_since(started))

    async def _token(self, started: float) -> str:
        async with self._bearer_lock:
            now = self._now()
            if self._bearer is not None and self._bearer[1] > now:
                return self._bearer[0]
            config = self._config
            form = {"grant_type": _GRANT, "assertion": assertion(config, now)}
            try:
                async with self._client().post(
                    config.token_url, data=form, allow_redirects=False
                ) as response:
                    answer = await response.read()
                    if response.status != 200:
                        raise _Failed(_auth_failure(response.status, answer, started))
                    granted = json.loads(answer)
                    token = str(granted["access_token"])
                    lifetime = float(granted.get("expires_in", 3600))
            except (_client_error(), OSError, TimeoutError) as error:
                raise _Failed(classify(error=error, latency_ms=_since(started))) from error
            except (ValueError, KeyError, TypeError) as error:
                raise _Failed(_auth_failure(200, b"", started, str(error))) from error
            self._bearer = (token, now + max(lifetime - _EARLY_S, 1))
            return token

    def _observed(self, outcome: Outcome) -> Outcome:
        if self._metrics is not None:
            self._metrics.observe_attempt(outcome)
        return outcome

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def assertion(config: PushConfig, now: float) -> str:
    """The signed JWT (RS256) a service account trades for an access token."""
    header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
    if config.key_id:
        header["kid"] = config.key_id
    claims = {
        "iss": config.client_email,
        "scope": SCOPE,
        "aud": config.token_url,
        "iat": int(now),
        "exp": int(now) + 3600,
    }
    return jwt.encode(header, claims, config.private_key, algorithms=["RS256"])


def _fcm_message(token: str, item: UserMessage) -> dict[str, Any]:
    """The FCM v1 ``message`` for one device and one ``Message`` (§3.2's basic notification)."""
    keywords = {k: v for k, v in item.parts.headers.items() if k in _KEYWORDS}
    data = {k: v for k, v in item.parts.headers.items() if k not in _KEYWORDS}
    raw = json.dumps(item.message, separators=(",", ":"), ensure_ascii=False).encode()
    data["mph_message"] = base64.b64encode(raw).decode()
    event = item.message["remoteEvent"]
    status = event["eventStatus"]
    text = f"{event['remoteType']}: {status.get('failureCause') or status['status']}"
    message: dict[str, Any] = {"token": token, "data": data}
    if keywords.get("disableNotificationPayload", "").lower() != "true":
        notification = {
            "title": keywords.get("title") or item.label or event["remoteType"],
            "body": keywords.get("body") or text,
        }
        if keywords.get("image"):
            notification["image"] = keywords["image"]
        message["notification"] = notification
    android: dict[str, Any] = {}
    priority = keywords.get("deliveryPriority", "").lower()
    if priority in ("low", "normal", "high"):
        android["priority"] = "high" if priority == "high" else "normal"
    if keywords.get("ttl", "").isdigit():
        android["ttl"] = f"{int(keywords['ttl'])}s"
    shown: dict[str, Any] = {
        fcm: keywords[key] for key, fcm in _ANDROID_KEYS.items() if keywords.get(key)
    }
    for key, fcm in _ANDROID_LISTS.items():
        if keywords.get(key):
            shown[fcm] = [arg.strip() for arg in keywords[key].split(",")]
    if shown:
        android["notification"] = shown
    if android:
        message["android"] = android
    aps: dict[str, Any] = {}
    if keywords.get("badge", "").isdigit():
        aps["badge"] = int(keywords["badge"])
    if keywords.get("mutable", "").lower() == "true":
        aps["mutable-content"] = 1
    if keywords.get("contentAvailable", "").lower() == "true":
        aps["content-available"] = 1
    if aps:
        message["apns"] = {"payload": {"aps": aps}}
    return message


def _unregistered(outcome: Outcome) -> bool:
    if outcome.delivered or not outcome.response_excerpt:
        return False
    return '"UNREGISTERED"' in outcome.response_excerpt


def _auth_failure(status: int, answer: bytes, started: float, why: str = "") -> Outcome:
    return Outcome(
        delivered=False,
        status_code=status,
        error_class="auth",
        latency_ms=_since(started),
        response_excerpt=excerpt(answer),
        detail=why or f"the token endpoint refused the service account ({status})",
    )


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
