"""Webhook target rules: which URLs a callback may point at, and the same rule for addresses."""

from __future__ import annotations

import ipaddress

import pytest

from keyfob.callbacks.targets import (
    MAX_URL_LENGTH,
    TargetPolicy,
    address_allowed,
    check_target,
    host_allowed_without_checks,
)
from keyfob.errors import ErrorCode, KeyfobError

STRICT = TargetPolicy()
LOCAL = TargetPolicy(allow_private=True)
LISTED = TargetPolicy(
    allow_hosts=frozenset({"Receiver.Internal", "169.254.169.254", "[FE80::1]", "10.1.2.3"})
)


@pytest.mark.parametrize(
    ("url", "policy", "normalized"),
    [
        ("https://hooks.example.com/cb", STRICT, "https://hooks.example.com/cb"),
        ("HTTPS://Hooks.Example.COM./cb?a=B", STRICT, "https://hooks.example.com/cb?a=B"),
        ("https://hooks.example.com:8443", STRICT, "https://hooks.example.com:8443"),
        ("https://hooks.example.com:/x", STRICT, "https://hooks.example.com/x"),
        ("https://93.184.216.34/hook", STRICT, "https://93.184.216.34/hook"),
        ("https://[2606:4700:0:0::1]/h", STRICT, "https://[2606:4700::1]/h"),
        ("https://b\u00fccher.example/h", STRICT, "https://xn--bcher-kva.example/h"),
        ("https://my_host.example.com/h", STRICT, "https://my_host.example.com/h"),
        # allowlisted hosts skip every check, http included
        ("http://receiver.internal:8080/h", LISTED, "http://receiver.internal:8080/h"),
        ("http://169.254.169.254/latest", LISTED, "http://169.254.169.254/latest"),
        ("https://[fe80::1]/h", LISTED, "https://[fe80::1]/h"),
        ("http://10.1.2.3/h", LISTED, "http://10.1.2.3/h"),
        # --allow-private-webhooks: local development
        ("http://localhost:9000/h", LOCAL, "http://localhost:9000/h"),
        ("http://app.localhost/h", LOCAL, "http://app.localhost/h"),
        ("http://127.0.0.1:9000/h", LOCAL, "http://127.0.0.1:9000/h"),
        ("http://[::1]:9000/h", LOCAL, "http://[::1]:9000/h"),
        ("http://192.168.1.20/h", LOCAL, "http://192.168.1.20/h"),
        ("https://10.0.0.5/h", LOCAL, "https://10.0.0.5/h"),
        ("http://[fd12:3456::1]/h", LOCAL, "http://[fd12:3456::1]/h"),
        ("https://hooks.example.com/cb", LOCAL, "https://hooks.example.com/cb"),
    ],
)
def test_accepted_targets(url: str, policy: TargetPolicy, normalized: str) -> None:
    assert check_target(url, policy) == normalized


@pytest.mark.parametrize(
    ("url", "policy", "hint"),
    [
        ("http://hooks.example.com/cb", STRICT, "https"),
        ("http://hooks.example.com/cb", LOCAL, "https"),
        ("http://93.184.216.34/h", LOCAL, "https"),
        ("http://receiver.internal/h", LOCAL, "https"),
        ("http://receiver.internal/h", STRICT, "--allow-private-webhooks"),
        ("https://127.0.0.1/h", STRICT, "--allow-private-webhooks"),
        ("https://[::1]/h", STRICT, "--allow-private-webhooks"),
        ("https://10.0.0.5/h", STRICT, "--allow-private-webhooks"),
        ("https://192.168.1.1/h", LISTED, "--allow-private-webhooks"),
        ("https://localhost/h", STRICT, "--allow-private-webhooks"),
        ("https://app.localhost/h", STRICT, "--allow-private-webhooks"),
        ("http://localhost/h", STRICT, "--allow-private-webhooks"),
        ("https://169.254.169.254/latest/meta-data", LOCAL, "metadata"),
        ("https://169.254.10.1/h", LOCAL, "link-local"),
        ("https://[fe80::1]/h", LOCAL, "link-local"),
        ("https://[fd00:ec2::254]/h", LOCAL, "metadata"),
        ("https://0.0.0.0/h", STRICT, "--allow-private-webhooks"),
        ("https://224.0.0.1/h", LOCAL, "not a public"),
        ("https://100.64.0.1/h", LOCAL, "not a public"),
        ("https://[::ffff:127.0.0.1]/h", STRICT, "--allow-private-webhooks"),
        # IPv6 forms that carry a private IPv4 address are judged by what they carry
        ("https://[64:ff9b::a00:1]/h", STRICT, "carries the IPv4 address 10.0.0.1"),
        ("https://[64:ff9b::a9fe:a9fe]/h", LOCAL, "169.254.169.254 is a cloud metadata"),
        ("https://[64:ff9b:1::a00:1]/h", STRICT, "--allow-private-webhooks"),
        ("https://[2002:a9fe:a9fe::]/h", LOCAL, "169.254.169.254 is a cloud metadata"),
        ("https://[2002:a00:1::]/h", STRICT, "10.0.0.1 is a loopback or private"),
        ("https://[::7f00:1]/h", STRICT, "127.0.0.1 is a loopback or private"),
        ("https://[::a00:1]/h", STRICT, "10.0.0.1 is a loopback or private"),
        ("https://[::ffff:a9fe:a9fe]/h", LOCAL, "metadata"),
        # Teredo: server 65.54.227.120, client 10.0.0.1 (stored inverted as f5ff:fffe)
        ("https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/h", STRICT, "10.0.0.1"),
        ("https://[2001:0:4136:e378:8000:63bf:5601:5601]/h", LOCAL, "169.254.169.254"),
        ("https://user:pass@hooks.example.com/h", STRICT, "Authorization"),
        ("https://token@hooks.example.com/h", LISTED, "Authorization"),
        ("https://hooks.example.com/h#frag", STRICT, "fragment"),
        ("https://hooks.example.com/h#", STRICT, "fragment"),
        ("https://hooks.example.com:0/h", STRICT, "1 to 65535"),
        ("https://hooks.example.com:65536/h", STRICT, "1 to 65535"),
        ("https://hooks.example.com:http/h", STRICT, "1 to 65535"),
        ("/relative/path", STRICT, "absolute URL"),
        ("hooks.example.com/cb", STRICT, "absolute URL"),
        ("//hooks.example.com/cb", STRICT, "absolute URL"),
        ("localhost:8080/cb", LOCAL, "absolute URL"),
        ("", STRICT, "absolute URL"),
        ("ftp://hooks.example.com/f", STRICT, "'ftp'"),
        ("wss://hooks.example.com/f", STRICT, "'wss'"),
        ("https:///only-path", STRICT, "absolute URL"),
        ("https://:443/h", STRICT, "no host"),
        ("https://hooks example.com/h", STRICT, "spaces"),
        ("https://hooks.example.com/a\nb", STRICT, "control"),
        ("https://[::1/h", LOCAL, "IPv6"),
        ("https://[nothost]/h", STRICT, "IPv6"),
        ("https://127.1/h", LOCAL, "not a valid host"),
        ("https://2130706433/h", LOCAL, "not a valid host"),
        ("https://0x7f000001/h", LOCAL, "not a valid host"),
        ("https://-bad-.example.com/h", STRICT, "not a valid host"),
        ("https://[fe80::1%25eth0]/h", LOCAL, "not a valid host"),
        ("https://hooks.example.com/" + "a" * MAX_URL_LENGTH, STRICT, "2048"),
    ],
)
def test_refused_targets(url: str, policy: TargetPolicy, hint: str) -> None:
    with pytest.raises(KeyfobError) as caught:
        check_target(url, policy, field="callback.webhook.target")
    assert caught.value.error is ErrorCode.INVALID_WEBHOOK_TARGET
    assert caught.value.message.startswith("callback.webhook.target: ")
    assert hint in caught.value.message


def test_longest_accepted_url() -> None:
    url = "https://hooks.example.com/"
    url += "a" * (MAX_URL_LENGTH - len(url))
    assert check_target(url, STRICT) == url


def test_policy_normalizes_and_rejects_allowlist_entries() -> None:
    assert LISTED.allow_hosts == {"receiver.internal", "169.254.169.254", "fe80::1", "10.1.2.3"}
    with pytest.raises(ValueError, match="https://x"):
        TargetPolicy(allow_hosts=frozenset({"https://x"}))


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("receiver.internal", True),
        ("RECEIVER.internal.", True),
        ("fe80::1", True),
        ("[fe80:0::1]", True),
        ("other.internal", False),
        ("10.1.2.4", False),
        ("not a host", False),
    ],
)
def test_host_allowed_without_checks(host: str, expected: bool) -> None:
    assert host_allowed_without_checks(host, LISTED) is expected


@pytest.mark.parametrize(
    ("address", "policy", "expected"),
    [
        ("93.184.216.34", STRICT, True),
        ("2606:4700::1", STRICT, True),
        ("127.0.0.1", STRICT, False),
        ("127.0.0.1", LOCAL, True),
        ("::1", LOCAL, True),
        ("10.9.9.9", LOCAL, True),
        ("10.9.9.9", STRICT, False),
        ("169.254.169.254", LOCAL, False),
        ("169.254.169.254", LISTED, True),
        ("169.254.1.1", LOCAL, False),
        ("fe80::1", LOCAL, False),
        ("fe80::1", LISTED, True),
        ("10.1.2.3", LISTED, True),
        ("::ffff:10.0.0.1", STRICT, False),
        ("::ffff:10.0.0.1", LOCAL, True),
        ("::ffff:8.8.8.8", STRICT, True),
        ("64:ff9b::808:808", STRICT, True),
        ("64:ff9b::a00:1", STRICT, False),
        ("64:ff9b::a00:1", LOCAL, True),
        ("64:ff9b::7f00:1", STRICT, False),
        ("64:ff9b::a9fe:a9fe", LOCAL, False),
        ("64:ff9b:1::808:808", STRICT, False),
        ("64:ff9b:1:a00:1::", LOCAL, True),
        ("2002:808:808::1", STRICT, True),
        ("2002:a00:1::1", STRICT, False),
        ("2002:a9fe:a9fe::", LOCAL, False),
        ("::7f00:1", STRICT, False),
        ("::a00:1", STRICT, False),
        ("::a00:1", LOCAL, True),
        ("::808:808", STRICT, True),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", STRICT, False),
        ("2001:0:4136:e378:8000:63bf:5601:5601", LOCAL, False),
        ("224.0.0.1", LOCAL, False),
        ("not-an-ip", LOCAL, False),
    ],
)
def test_address_allowed(address: str, policy: TargetPolicy, expected: bool) -> None:
    assert address_allowed(address, policy) is expected
    if address != "not-an-ip":
        assert address_allowed(ipaddress.ip_address(address), policy) is expected
