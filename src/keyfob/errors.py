"""Every error keyfob can answer with, in one catalogue.

The contract's error body is ``xError`` ``{code, uuid, message, timestamp}`` where ``code`` is the
HTTP status times 100 plus a two-digit reason. Keeping every code in one enum lets the API render
them through a single handler and lets ``docs/errors.md`` be checked against the code by a test.

    KeyfobError(ErrorCode, message)
        └── rendered by api.errors as  <status> {"code": <code>, "uuid", "message", "timestamp"}
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(Enum):
    """``(code, meaning)``; the HTTP status is ``code // 100``."""

    BAD_REQUEST = (40000, "The request is invalid.")
    MALFORMED_JSON = (40001, "The body is not valid JSON.")
    INVALID_BODY = (40002, "A field of the body is missing or has an invalid value.")
    LEGACY_FIELD = (
        40003,
        "The body uses a field name that was renamed; the message names the current one.",
    )
    REMOTE_TYPE_NOT_IN_CALLBACK = (40004, "The remote's type is not in the callback's remoteTypes.")
    NOT_SUPPORTED_BY_VEHICLE = (
        40005,
        "The vehicle cannot perform this remote (onboard capabilities).",
    )
    INVALID_QUERY = (40006, "A query parameter is invalid.")
    INVALID_PATH_ID = (40007, "An identifier in the path does not have the expected format.")
    INVALID_WEBHOOK_TARGET = (40008, "The webhook target is not an acceptable URL.")
    UNKNOWN_VARIABLE = (40009, "An attribute value names an unknown $variable.")
    INVALID_PAGE_TOKEN = (40010, "The pageToken is not one this server issued for this query.")
    UNKNOWN_REALM = (40011, "The x-introspect-realm header is missing or names no brand realm.")
    UNAUTHENTICATED = (40100, "Credentials are missing.")
    BAD_CREDENTIALS = (40101, "The login, password or client_id is wrong.")
    FORBIDDEN = (40300, "The credentials do not give access to this resource.")
    MISSING_SCOPE = (40301, "The access token lacks the scope this action needs.")
    NOT_FOUND = (40400, "No such resource.")
    FLEET_NOT_FOUND = (40401, "No such fleet for this partner.")
    VEHICLE_NOT_FOUND = (40402, "No such vehicle in this fleet.")
    CALLBACK_NOT_FOUND = (40403, "No such callback in this fleet.")
    REMOTE_NOT_FOUND = (40404, "No such remote action.")
    NOTIFICATION_NOT_FOUND = (40405, "No such notification.")
    CAMPAIGN_NOT_FOUND = (40406, "No such campaign in this fleet.")
    NO_DATA = (40499, "No data available for this context.")
    METHOD_NOT_ALLOWED = (40500, "This method is not allowed on this path.")
    NOT_ACCEPTABLE = (40600, "The requested media type cannot be produced.")
    CONFLICT = (40900, "The request conflicts with the resource's state.")
    CALLBACK_NOT_RUNNING = (40901, "The callback is Paused or Failed; set it Running first.")
    CALLBACK_HAS_PENDING_REMOTES = (40902, "The callback still has remotes in progress.")
    ALREADY_EXISTS = (40903, "A resource with this identifier already exists.")
    REMOTE_NOT_CANCELLABLE = (40904, "The remote was sent to the vehicle or has finished.")
    CAMPAIGN_FINISHED = (40905, "The campaign has finished or was cancelled.")
    BODY_TOO_LARGE = (41300, "The body is larger than 256 KiB.")
    UNSUPPORTED_MEDIA_TYPE = (41500, "The body must be application/json.")
    IDEMPOTENCY_KEY_REUSED = (42200, "The Idempotency-Key was used with a different request body.")
    RATE_LIMITED = (42900, "Too many requests; see Retry-After.")
    SIGN_IN_THROTTLED = (42901, "Too many failed sign-ins; see Retry-After.")
    HEADERS_TOO_LARGE = (43100, "The request line and headers are larger than 16 KiB.")
    INTERNAL = (50000, "Unexpected server error.")
    UNAVAILABLE = (50300, "The service is not ready.")

    @property
    def code(self) -> int:
        return self.value[0]

    @property
    def meaning(self) -> str:
        return self.value[1]

    @property
    def status(self) -> int:
        return self.value[0] // 100


class InvalidToken(Exception):
    """The user face's Bearer token is missing, malformed, expired, revoked or for another
    realm or client: answered with the API gateway's own 401 body, not ``xError``
    (decision 28), because clients refresh their token only on that exact body."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        """For the log only; the answer never says why."""
        super().__init__(reason)


class KeyfobError(Exception):
    """A refusal that carries its HTTP status; raised by services, rendered by the API."""

    def __init__(
        self,
        error: ErrorCode,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.error = error
        self.message = message or error.meaning
        self.headers = headers or {}
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return self.error.status

    @property
    def code(self) -> int:
        return self.error.code
