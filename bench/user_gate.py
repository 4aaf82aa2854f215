"""The user face's gate per request, against the fleet face's, timed in the same process.

Three ways to let one request in, each called back to back in alternating rounds on one
event loop (no HTTP, so only the check itself is timed):

* ``partner``: the fleet face's ``api.access.admit`` with HTTP Basic + ``client_id`` whose
  verdict is cached (the baseline: what every v3 request pays);
* ``bearer``: ``api.user_access.admit_user`` with a Bearer JWT already verified once (what
  every v4 request pays: cache look-up, expiry, revocations, realm, client, budget);
* ``verify``: the same with the verified-token cache emptied before each call, so the ES256
  signature is checked every time (what the first request of a token pays in each process).

Printed: the median µs per check of each, and the ratios to ``partner``.

    python bench/user_gate.py            # 7 rounds of 0.5 s per variant
    python bench/user_gate.py --quick    # 3 rounds of 0.2 s
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from keyfob.api.access import admit  # noqa: E402
from keyfob.api.user_access import admit_user  # noqa: E402
from keyfob.auth.authority import VerifiedTokens  # noqa: E402
from keyfob.auth.service import create_partner  # noqa: E402
from keyfob.config import Settings  # noqa: E402
from keyfob.kit.clock import utcnow  # noqa: E402
from keyfob.runtime.context import build_context  # noqa: E402
from keyfob.store import migrate  # noqa: E402
from user_support import make_user  # noqa: E402


async def timed(check: Callable[[], Awaitable[object]], seconds: float) -> float:
    """Mean µs per call over ``seconds`` (one call is too short to time by itself)."""
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            await check()
        calls += 50
    return elapsed / calls * 1e6


async def main(rounds: int, seconds: float) -> None:
    folder = tempfile.mkdtemp()
    settings = Settings(
        db=f"sqlite:///{folder}/bench.db",
        vehicles=0,
        rate_limit={"day": 10**9, "burst": 10**9},
    )
    ctx = build_context(settings)
    await migrate.upgrade(ctx.database)
    async with ctx.database.transaction() as conn:
        partner = await create_partner(
            conn, login="bench", password="bench-password", name="bench", now=utcnow()
        )
    user = await make_user(ctx)
    token = user.token

    async def partner_check() -> object:
        return await admit(
            ctx, ("bench", "bench-password"), partner.client_id, path_params={}, query=()
        )

    async def bearer_check() -> object:
        return await admit_user(
            ctx,
            token=token,
            client_id=user.client_id,
            realm="clientsB2CPeugeot",
            path_params={},
            query=(),
        )

    async def verify_check() -> object:
        ctx.user_auth.cache = VerifiedTokens(10)
        return await bearer_check()

    variants = {"partner": partner_check, "bearer": bearer_check, "verify": verify_check}
    for check in variants.values():
        await check()  # warm: caches filled, revocations read
    results: dict[str, list[float]] = {name: [] for name in variants}
    for index in range(rounds):
        order = list(variants) if index % 2 == 0 else list(reversed(variants))
        for name in order:
            results[name].append(await timed(variants[name], seconds))
    base = statistics.median(results["partner"])
    print(f"{'variant':8} {'median us/check':>16} {'vs partner':>11}   rounds")
    for name, values in results.items():
        median = statistics.median(values)
        rounds_text = " ".join(f"{v:.1f}" for v in values)
        print(f"{name:8} {median:16.1f} {median / base:11.2f}   {rounds_text}")
    await ctx.database.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(3 if args.quick else 7, 0.2 if args.quick else 0.5))
