"""The dispatcher: moves accepted remotes through their lifecycle against real vehicles.

Two loops, both stateless between batches (everything lives in the database, so a dispatcher
can crash, restart, or run beside others on PostgreSQL):

* the advancer claims due remotes (``FOR UPDATE SKIP LOCKED``), decides each one's next step
  with the pure ``remotes.lifecycle.advance``, writes every event in one transaction, and only
  then sends the wake-ups and commands;
* the uplink consumer takes what vehicles publish (presence, status, acks, results) in
  batches: presence and status update what the platform knows, a vehicle coming online makes
  its waking remotes due at once, and a result ends its remote with a Done event.

A command is never published before the transaction that records SentToVehicle commits; a
publication that fails is retried under the same command id until the command deadline. The
wake-ups and commands of a batch are handed to the broker by a task of their own (at most
``publishing`` at once), so a slow or lost PUBACK does not stop the next batches, nor the
deadline checks that come with them.

What vehicles say is data and is never dropped because the database is in trouble: a batch
that cannot be stored stays in the inbox and is tried again (backing off up to 2 s) until it
is. Each message's ``Receipt`` completes once it is stored, and only then does the link
acknowledge it to the broker. When ``max_backlog`` messages wait, the handler stops returning,
the link stops reading, and the broker keeps the rest: memory stays bounded.

A command's deadline never ends a remote whose result this dispatcher holds unstored: the
store may be failing, or hanging on a connection the database stopped answering (for up to
the statement time-out) while the advancer's fresh connection works. Such a remote waits one
more command time-out, like one whose car may still answer after a broken link; the result is
stored meanwhile and ends it. The same holds for all remotes while the link has stopped
reading because the backlog is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

from keyfob.kit.clock import Clock
from keyfob.link.protocol import (
    Ack,
    Command,
    Presence,
    PresenceState,
    ProtocolError,
    Result,
    Telemetry,
    action_for,
    encode,
)
from keyfob.link.topics import (
    PLATFORM_SUBSCRIPTIONS,
    Channel,
    Uplink,
    decode_uplink,
    shared,
    vehicle_topic,
)
from keyfob.link.transport import Outgoing, Receipt, Transport
from keyfob.link.wakeup import WakeUpChannel, WakeUpError
from keyfob.notifications import ledger
from keyfob.notifications.handover import Handover, Lessee
from keyfob.notifications.queue import Delivery
from keyfob.remotes import progress
from keyfob.remotes.lifecycle import QUEUED, UNDER_WAY, Limits, Step, advance
from keyfob.remotes.metrics import RemoteMetrics, count_done
from keyfob.store.engine import Database
from keyfob.store.one_trip import run_in_one_trip
from keyfob.store.units import Execute, Plan, only, run_unit
from keyfob.vehicles import state as vehicle_state
from keyfob.vocabulary import EventType, RemoteType

log = logging.getLogger("keyfob.link")
RETRY_CEILING_S = 2.0


class Deliverer(Protocol):
    """A delivery worker in this process, which posts the notifications of the events this
    dispatcher stores without claiming them (``notifications.handover``)."""

    @property
    def lessee(self) -> Lessee | None:
        """Whom to lease the rows to; ``None``: nobody takes them now, leave them to a claim."""

    def take(self, handover: Handover) -> list[Delivery]:
        """Post the rows; returns those it did not take, still leased, to be given back."""

    def wake(self) -> None: ...


@dataclass
class DispatcherOptions:
    batch: int = 200
    poll_s: float = 0.2
    short_window: timedelta = timedelta(minutes=20)
    republish_after: timedelta = timedelta(seconds=2)
    share_group: str | None = None  # MQTT shared subscription when several dispatchers run
    max_backlog: int = 1000  # vehicle messages held unstored before the link stops reading
    publishing: int = 8  # batches of wake-ups and commands handed to the broker at once


class Dispatcher:
    def __init__(
        self,
        database: Database,
        link: Transport,
        wakeup: WakeUpChannel,
        *,
        clock: Clock,
        limits: Limits,
        options: DispatcherOptions | None = None,
        metrics: RemoteMetrics | None = None,
        on_recorded: Callable[[bool], None] | None = None,
        delivery: Deliverer | None = None,
    ) -> None:
        self.database = database
        self.delivery = delivery
        self.metrics = metrics
        self.on_recorded = on_recorded
        """Called once events are committed, with whether ``delivery`` took every notification
        they raised (the delivery workers claim the rest at once; event streams follow all)."""
        self._finishing: list[progress.Planned] = []  # Done by vehicle answers, once committed
        self._finished_handover: Handover | None = None  # their notifications, leased here
        self.link = link
        self.wakeup = wakeup
        self.clock = clock
        self.limits = limits
        self.options = options or DispatcherOptions()
        self._inbox: list[Uplink] = []
        self._unstored_results: set[str] = set()  # command ids, in the inbox or being stored
        self._receipts: list[Receipt] = []
        self._room = asyncio.Event()
        self._carrying: set[asyncio.Task[None]] = set()
        self._uplinks = asyncio.Event()
        self._due = asyncio.Event()
        self._stopping = asyncio.Event()
        self._vehicle_ids: dict[str, str] = {}
        self._heard_since: datetime | None = None  # when the link last came up
        self.published = 0

    # -- the link --------------------------------------------------------------------

    async def start(self) -> None:
        self.link.set_handler(self._on_uplink)
        self.link.set_connect_hook(self._link_up)
        await self.link.start()
        for pattern in PLATFORM_SUBSCRIPTIONS:
            group = self.options.share_group
            await self.link.subscribe(shared(group, pattern) if group else pattern)

    async def _link_up(self) -> None:
        self._heard_since = self.clock()

    async def _on_uplink(self, topic: str, payload: bytes) -> Receipt | None:
        try:
            uplink = decode_uplink(topic, payload)
        except ProtocolError as exc:
            log.warning("dropped a malformed message on %s: %s", topic, exc.message)
            return None
        self._inbox.append(uplink)
        if isinstance(uplink.message, Result):
            self._unstored_results.add(uplink.message.id)
        if not self._receipts:
            self._receipts.append(asyncio.get_running_loop().create_future())
        receipt = self._receipts[-1]
        self._uplinks.set()
        while len(self._inbox) >= self.options.max_backlog and not self._stopping.is_set():
            self._room.clear()  # full: the link waits here, and so stops reading
            await self._room.wait()
        return receipt

    @property
    def backlog(self) -> int:
        """Vehicle messages received and not yet stored."""
        return len(self._inbox)

    # -- advancing due remotes ---------------------------------------------------------

    async def advance_due(self) -> int:
        """One batch of due remotes: decide, record, then wake and send. Returns its size."""
        now = self.clock()
        lessee = self._lessee()  # on this thread: a plan may run on the driver's
        planned, handover = await run_unit(self.database, lambda: self._advance(now, lessee))
        count_done(self.metrics, planned, now)
        if planned:
            self._recorded(handover)
            await self._carry_out(planned, now)
        return len(planned)

    def _give_back(self, owner: str, deliveries: list[Delivery]) -> None:
        """Rows leased for a worker that did not take them: claimable again at once (else
        they would wait for their lease to run out)."""
        ids = [row.id for delivery in deliveries for row in delivery.rows]
        task = asyncio.create_task(self._release(owner, ids), name="dispatch-give-back")
        self._carrying.add(task)
        task.add_done_callback(self._carrying.discard)

    async def _release(self, owner: str, ids: list[str]) -> None:
        try:
            await run_in_one_trip(
                self.database, partial(ledger.release, owner=owner, ids=ids), synced=False
            )
        except Exception:  # their lease runs out instead
            log.exception("giving back %d notifications failed", len(ids))
            return
        if self.delivery is not None:
            self.delivery.wake()
        if self.on_recorded is not None:
            self.on_recorded(False)

    def _lessee(self) -> Lessee | None:
        return self.delivery.lessee if self.delivery is not None else None

    def _recorded(self, handover: Handover | None) -> None:
        """Events committed: their notifications handed to this process's worker, and the
        workers nudged for those it did not take."""
        taken = False
        if self.delivery is not None:
            if handover is not None:
                left = self.delivery.take(handover)
                taken = handover.complete and not left
                if left:
                    self._give_back(handover.owner, left)
            if not taken:  # it claims the rest
                self.delivery.wake()
        if self.on_recorded is not None:
            self.on_recorded(taken)

    async def _advance_in_background(self) -> int:
        """``advance_due`` whose wake-ups and commands go out in a task of their own."""
        now = self.clock()
        lessee = self._lessee()  # on this thread: a plan may run on the driver's
        planned, handover = await run_unit(self.database, lambda: self._advance(now, lessee))
        count_done(self.metrics, planned, now)
        if planned:
            self._recorded(handover)
            while len(self._carrying) >= self.options.publishing:
                await asyncio.wait(self._carrying, return_when=asyncio.FIRST_COMPLETED)
            task = asyncio.create_task(self._carry_out_logged(planned, now), name="dispatch-out")
            self._carrying.add(task)
            task.add_done_callback(self._carrying.discard)
        return len(planned)

    async def _carry_out_logged(self, planned: list[progress.Planned], now: datetime) -> None:
        try:
            await self._carry_out(planned, now)
        except Exception:
            # The remotes are recorded as sent: their deadlines end them if nothing follows.
            log.exception("sending %d remotes' wake-ups and commands failed", len(planned))

    def _advance(
        self, now: datetime, lessee: Lessee | None = None
    ) -> Plan[tuple[list[progress.Planned], Handover | None]]:
        due = yield from progress.claim_due(now=now, limit=self.options.batch)
        if not due:
            return [], None
        facts, taken = yield from progress.facts_for(
            due, now=now, short_window=self.options.short_window
        )
        reading = self.link.connected and len(self._inbox) < self.options.max_backlog
        heard_since = self._heard_since if reading else None
        unstored = self._unstored_results
        planned = []
        for remote in sorted(due, key=lambda d: (d.created_at, d.id)):
            found = facts[remote.id]
            key = (remote.vehicle_id, remote.type)
            if remote.phase == QUEUED and key in taken:
                found = replace(found, same_action_in_progress=True)
            held = remote.command_id is not None and remote.command_id in unstored
            step = advance(found, now, self.limits, heard_since=None if held else heard_since)
            if remote.phase == QUEUED and step.phase in UNDER_WAY:
                taken.add(key)
            planned.append(progress.plan(remote, step))
        handover = yield from progress.apply(planned, now=now, lessee=lessee)
        return planned, handover

    async def _carry_out(self, planned: list[progress.Planned], now: datetime) -> None:
        wake_vins = {p.due.vin for p in planned if p.step.send_wake_up}
        sends = [p for p in planned if p.step.send_command and p.command_id]
        if wake_vins:
            if self.metrics is not None:
                self.metrics.woke(len(wake_vins))
            await asyncio.gather(*(self._wake(vin) for vin in wake_vins))
        failed = await self._publish(sends) if sends else []
        if failed:
            at = now + self.options.republish_after
            await run_unit(
                self.database, lambda: only(progress.retry_publish_soon(remote_ids=failed, at=at))
            )

    async def _wake(self, vin: str) -> bool:
        try:
            await self.wakeup.wake(vin)
        except WakeUpError as exc:
            # The vehicle will not come online: its remotes end at their wake-up deadline.
            log.warning("wake-up of %s refused: %s", vin, exc.message)
            return False
        return True

    async def _publish(self, sends: list[progress.Planned]) -> list[str]:
        """Publishes the commands in one batch; returns the remotes whose command failed."""
        issued_at = self.clock()
        messages = []
        for planned in sends:
            remote = planned.due
            action = action_for(RemoteType(remote.type))
            command = Command(
                id=planned.command_id or "",
                action=action,
                params=remote.body.get(action.value, {}),
                issued_at=issued_at,
                expires_at=planned.step.deadline_at or issued_at,
            )
            messages.append(Outgoing(vehicle_topic(remote.vin, Channel.CMD), encode(command)))
        failed = []
        for planned, error in zip(sends, await self.link.publish_many(messages), strict=True):
            if error is None:
                self.published += 1
            else:
                vin = planned.due.vin
                log.warning("command for %s not published (%s); will retry", vin, error.message)
                failed.append(planned.due.id)
        return failed

    # -- what vehicles say -----------------------------------------------------------

    async def _vehicle_ids_for(self, vins: set[str]) -> dict[str, str]:
        missing = vins - self._vehicle_ids.keys()
        if missing:
            async with self.database.read() as conn:
                self._vehicle_ids.update(await vehicle_state.vehicle_ids_by_vin(conn, missing))
        return {vin: self._vehicle_ids[vin] for vin in vins if vin in self._vehicle_ids}

    async def process_uplinks(self) -> int:
        """Everything vehicles said since the last call, in one transaction."""
        batch, self._inbox = self._inbox, []
        receipts, self._receipts = self._receipts, []
        if not batch:
            return 0
        try:
            stored = await self._process(batch)
        except BaseException:
            # Kept, ahead of what arrived since, for the consumer's next try: a transient
            # failure (a PostgreSQL deadlock, a lost connection) must not lose a result.
            self._inbox[:0] = batch
            self._receipts[:0] = receipts
            raise
        self._unstored_results.difference_update(
            u.message.id for u in batch if isinstance(u.message, Result)
        )
        for receipt in receipts:
            if not receipt.done():
                receipt.set_result(None)
        if len(self._inbox) < self.options.max_backlog:
            self._room.set()
        return stored

    async def _process(self, batch: list[Uplink]) -> int:
        ids = await self._vehicle_ids_for({u.vin for u in batch})
        presence: dict[str, Presence] = {}
        status: dict[str, Telemetry] = {}
        results: dict[str, tuple[str, Result]] = {}
        for uplink in batch:
            if uplink.vin not in ids:
                continue
            match uplink.message:
                case Presence():
                    presence[uplink.vin] = uplink.message
                case Telemetry():
                    status[uplink.vin] = uplink.message
                case Result():
                    results[uplink.message.id] = (uplink.vin, uplink.message)
                case Ack():
                    pass
        now = self.clock()
        self._finishing = []
        self._finished_handover = None
        lessee = self._lessee()
        online = await run_unit(
            self.database, lambda: self._record(presence, status, results, ids, now, lessee)
        )
        count_done(self.metrics, self._finishing, now)
        if results or self._finishing:
            self._recorded(self._finished_handover)
        if online:
            self._due.set()
        return len(batch)

    def _record(
        self,
        presence: dict[str, Presence],
        status: dict[str, Telemetry],
        results: dict[str, tuple[str, Result]],
        ids: dict[str, str],
        now: datetime,
        lessee: Lessee | None = None,
    ) -> Plan[set[str]]:
        online = set()
        # Rows are written in one order (by vehicle, then by remote) in every process, so two
        # dispatchers recording the same messages wait for each other, never deadlock.
        for vin, message in sorted(presence.items(), key=lambda item: ids[item[0]]):
            # An ``offline`` is usually the broker's last will, stamped when the connection
            # opened: it is older than the ``online`` that followed, so take our receive time.
            at = now if message.state is PresenceState.OFFLINE else message.at
            applied = yield Execute(
                vehicle_state.presence_update(
                    vehicle_id=ids[vin], presence=message.state.value, at=at
                )
            )
            if applied and message.state is PresenceState.ONLINE:
                online.add(ids[vin])
        reports = sorted(
            (
                {"s_vehicle_id": ids[vin], "s_status": dict(t.status), "s_status_at": t.at}
                for vin, t in status.items()
            ),
            key=lambda report: str(report["s_vehicle_id"]),
        )
        yield vehicle_state.STATUS.rows(reports)
        if online:
            yield progress.hurry_waking(vehicle_ids=online, now=now)
        if results:
            yield from self._finish(results, now, lessee)
        return online

    def _finish(
        self, results: dict[str, tuple[str, Result]], now: datetime, lessee: Lessee | None
    ) -> Plan[None]:
        planned = []
        for remote in (yield from progress.sent_by_command(list(results))):
            vin, result = results[remote.command_id or ""]
            if vin != remote.vin:
                log.warning("%s answered a command sent to %s; ignored", vin, remote.vin)
                continue
            cause = result.failure_cause
            feedback = result.feedback_detail
            done = (
                EventType.DONE,
                result.done_status.value,
                cause.value if cause else None,
                feedback.value if feedback else None,
            )
            planned.append(progress.Planned(remote, Step(events=[done]), None))
        self._finishing = planned  # a unit run again replaces it
        self._finished_handover = yield from progress.apply(planned, now=now, lessee=lessee)

    # -- loops -----------------------------------------------------------------------

    def wake(self) -> None:
        self._due.set()

    def stop(self) -> None:
        self._stopping.set()
        self._due.set()
        self._uplinks.set()
        self._room.set()

    async def run_once(self) -> int:
        """Process pending uplinks, then advance one batch; for tests that drive the clock."""
        await self.process_uplinks()
        return await self.advance_due()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._advancer(), name="dispatch-advancer")
            group.create_task(self._consumer(), name="dispatch-uplinks")

    async def _advancer(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    handled = await self._advance_in_background()
                except Exception:
                    log.exception("advancing remotes failed; retrying shortly")
                    handled = 0
                if handled < self.options.batch:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._due.wait(), self.options.poll_s)
                    self._due.clear()
        finally:
            for task in list(self._carrying):
                task.cancel()  # its remotes' deadlines end them if the command never left
            await asyncio.gather(*self._carrying, return_exceptions=True)

    async def _consumer(self) -> None:
        """Stores what vehicles said; on failure keeps it and tries again, never drops it."""
        failures = 0
        while not self._stopping.is_set():
            await self._uplinks.wait()
            self._uplinks.clear()
            try:
                await self.process_uplinks()
            except Exception:
                failures += 1
                self._heard_since = None  # what vehicles say is not taken in: no time-outs
                if failures == 1:  # one line per outage, not one per try
                    log.warning(
                        "recording %d vehicle messages failed; kept, retrying until stored",
                        self.backlog,
                        exc_info=True,
                    )
                await asyncio.sleep(min(0.05 * 2 ** min(failures, 10), RETRY_CEILING_S))
                self._uplinks.set()
            else:
                if failures:
                    log.warning("vehicle messages stored again after %d failed tries", failures)
                    self._heard_since = self.clock()
                failures = 0

    async def close(self) -> None:
        self.stop()
        await self.link.stop()
