"""Errors of the authorization server's token endpoints, in the RFC 6749 §5.2 form.

Not ``xError``: OAuth clients parse ``{"error", "error_description"}`` (decision 28). Raised
by the services in ``auth.oauth`` and ``auth.clients``, rendered by the ``/am/oauth2`` routes.
"""

from __future__ import annotations


class OAuthError(Exception):
    """``error`` is an RFC 6749 / RFC 7009 code: ``invalid_request``, ``invalid_client``,
    ``invalid_grant``, ``unauthorized_client``, ``unsupported_grant_type``,
    ``invalid_scope``, ``unsupported_token_type``."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        self.error = error
        self.description = description
        self.status = status
        super().__init__(f"{error}: {description}")

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_client(description: str = "client authentication failed") -> OAuthError:
    return OAuthError("invalid_client", description, status=401)


def invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)
