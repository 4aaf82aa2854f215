"""The brand realms of the user face: the documented names and the short ones clients send.

A token is issued for one realm and valid only there (decision 27). The documented spelling of
Peugeot's realm carries the source's typo (``Peugot``); both it and the short forms real
clients send in ``x-introspect-realm`` name the same realm, kept as the documented spelling.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Realm:
    name: str
    """The documented spelling, the canonical form stored with tokens and OAuth clients."""
    short: str
    brand: str
    domain: str


REALMS = (
    Realm("clientsB2CPeugot/OTPPeugeot", "clientsB2CPeugeot", "Peugeot", "peugeot.com"),
    Realm("clientsB2CCitroen/OTPCitroen", "clientsB2CCitroen", "Citroën", "citroen.com"),
    Realm("clientsB2CDS/OTPDS", "clientsB2CDS", "DS", "driveds.com"),
    Realm("clientsB2COpel/OTPOpel", "clientsB2COpel", "Opel", "opel.com"),
    Realm("clientsB2CVauxhall/OTPVauxhall", "clientsB2CVauxhall", "Vauxhall", "vauxhall.co.uk"),
)
_BY_SPELLING = {spelling: realm for realm in REALMS for spelling in (realm.name, realm.short)}


def find_realm(spelling: str | None) -> Realm | None:
    """The realm either spelling names, or ``None`` for anything else (exact, case-sensitive)."""
    if spelling is None:
        return None
    return _BY_SPELLING.get(spelling)
