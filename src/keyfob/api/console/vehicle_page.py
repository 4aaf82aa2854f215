"""What the two faces' vehicle pages share: the remote forms' part of the page and sending one.

A partner's page (``routes_vehicles``) and an end user's (``routes_user_vehicles``) differ in
whose vehicle, callbacks and scopes they may use, and that stays in their routes: each builds
its own acceptor request and its own look-ups. What a form post does is the same on both: the
CSRF token is checked, the action must be one the face offers, the remote goes to the acceptor,
and a refusal about what the form says is shown at its fields on the page again (with the
refusal's HTTP status), while a vehicle that is not found is the 404 page.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from keyfob.api.console import pages, readable
from keyfob.api.console.guard import check_csrf
from keyfob.api.console.remote_form import BY_ACTION, ActionForm, Problems, body_of, place
from keyfob.api.console.session import Session
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.remotes.accept import AcceptRequest, UserAcceptRequest
from keyfob.runtime.context import AppContext

FIELD_ERRORS = (ErrorCode.INVALID_BODY, ErrorCode.LEGACY_FIELD)

AcceptFor = Callable[[str, dict[str, Any], str | None], AcceptRequest | UserAcceptRequest]
"""The face's acceptor request for (callback id, body, idempotency key)."""


@dataclass(frozen=True, slots=True)
class Retry:
    """A refused form, shown again: the refusal's status, the form, the problems, what was sent."""

    status: int = 200
    failed: str | None = None
    problems: Problems = field(default_factory=Problems)
    sent: dict[str, str] = field(default_factory=dict)


FIRST = Retry()
"""The page as first shown: no form refused."""


@dataclass(frozen=True, slots=True)
class Sent:
    callback_id: str
    remote_id: str


async def send_remote(
    request: Request,
    ctx: AppContext,
    session: Session,
    *,
    forms: Sequence[ActionForm],
    unknown_action: str,
    accept_for: AcceptFor,
) -> Sent | Retry:
    """The remote the posted form spells, accepted as the face's POST remote would accept it,
    or the form to show again when the acceptor refused what it says."""
    sent = await pages.read_form(request)
    check_csrf(session, sent)
    form = BY_ACTION.get(sent.get("action", ""))
    if form is None or form not in forms:
        raise KeyfobError(ErrorCode.BAD_REQUEST, unknown_action)
    callback_id = sent.get("callback", "")
    try:
        posted = await ctx.acceptor.accept(
            accept_for(callback_id, body_of(form, sent), sent.get("idempotency") or None)
        )
    except KeyfobError as refusal:
        if refusal.status == 404 and refusal.error is not ErrorCode.CALLBACK_NOT_FOUND:
            raise
        general = refusal.error not in FIELD_ERRORS
        problems = Problems(general=[refusal.message]) if general else place(form, refusal.message)
        return Retry(status=refusal.status, failed=form.action, problems=problems, sent=sent)
    ctx.wake()
    return Sent(callback_id, posted.remote_id)


def remote_forms(
    *,
    vehicle_url: str,
    csrf: str,
    forms: Sequence[ActionForm],
    callbacks: Sequence[Any],
    callback_note: Callable[[Any, ActionForm], str],
    no_callbacks: str,
    retry: Retry,
) -> dict[str, Any]:
    """The part of a vehicle page's context its remote forms and timeline links read."""
    return {
        "status": retry.status,
        "vehicle_url": vehicle_url,
        "remotes_url": f"{vehicle_url}/remotes",
        "csrf": csrf,
        "no_callbacks": no_callbacks,
        "callbacks": callbacks,
        "callback_note": callback_note,
        "forms": forms,
        "failed": retry.failed,
        "problems": retry.problems,
        "sent": retry.sent,
        "idempotency": secrets.token_urlsafe(16),
        "when": readable.when,
    }
