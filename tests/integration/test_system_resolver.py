"""The system resolver under the SSRF check: real lookups, answered in the shape the webhook
client dials, and vetted like any other; aiohttp stays unloaded on the webhook path."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from keyfob.callbacks.targets import TargetPolicy
from keyfob.notifications.outcome import RefusedAddress
from keyfob.notifications.resolver import SafeResolver, SystemResolver


async def test_localhost_resolves_to_its_loopback_addresses_with_the_port() -> None:
    found = await SystemResolver().resolve("localhost", 8443, socket.AF_UNSPEC)
    assert found, "localhost has an address"
    assert {item["host"] for item in found} <= {"127.0.0.1", "::1"}
    assert all(item["port"] == 8443 and item["hostname"] == "localhost" for item in found)
    assert all(item["family"] in (socket.AF_INET, socket.AF_INET6) for item in found)


async def test_a_name_that_does_not_resolve_is_a_lookup_error() -> None:
    with pytest.raises(socket.gaierror):
        await SystemResolver().resolve("no-such-host.invalid", 443, socket.AF_UNSPEC)


async def test_the_safe_resolver_refuses_what_the_system_resolver_found_for_loopback() -> None:
    with pytest.raises(RefusedAddress):
        await SafeResolver(TargetPolicy()).resolve("localhost", 443, socket.AF_UNSPEC)


def test_the_webhook_path_does_not_load_aiohttp() -> None:
    """Webhooks go through keyfob's own client: a process that never pushes to FCM or
    listens never pays aiohttp's memory."""
    code = (
        "import sys, keyfob.runtime.context, keyfob.runtime.delivery_role, "
        "keyfob.runtime.worker_child, keyfob.api.app; "
        "print('aiohttp' in sys.modules)"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "False"
