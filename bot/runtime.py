"""`numpolville run`: supervise one thread per source, carry out intents, stop cleanly.

A failing source is restarted with exponential backoff and jitter without stopping the others.
Effects go through one worker per network, in order; a pending intent found at start-up is
completed (adapters make every effect idempotent), never dropped.
"""

from __future__ import annotations

import logging
import queue
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from bot import systemd
from bot.adapter import Adapter, Emit, PermanentError, Source
from bot.config import Config
from bot.curator import Curator, describe
from bot.model import BridgeWaitOver, Event, PromptTimedOut
from bot.store import Intent, Store

log = logging.getLogger("numpolville.runtime")
TICK = 30.0
PENDING_POLL = 2.0  # seconds between two looks for intents written by another process (`serve`)
RETRY_FIRST, RETRY_MAX = 1.0, 60.0  # seconds before a failed effect is tried again, doubling
EVENT_MARK_INTERVAL = 1.0  # seconds between two "last event" writes for one source


class Runtime:
    def __init__(self, config: Config, store: Store, adapters: list[Adapter]) -> None:
        self.config, self.store, self.adapters = config, store, adapters
        self.curator = Curator(config, store)
        self.stop = threading.Event()
        self.queues: dict[str, queue.Queue[Intent | None]] = {a.network: queue.Queue() for a in adapters}
        self.threads: list[threading.Thread] = []
        self.sources: list[tuple[str, Source]] = []
        self._queued: set[str] = set()  # intents queued or in flight, never queued twice
        self._queued_lock = threading.Lock()

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect every network (a refused login stops the bot; an unreachable server is
        retried in the background), then start its sources and its effect worker."""
        pending = []
        for adapter in self.adapters:
            try:
                self._connected(adapter, adapter.connect())
            except PermanentError:
                raise
            except Exception as e:  # noqa: BLE001 - the server may come back: keep trying
                log.warning("%s: cannot connect yet (%s); retrying in the background", adapter.network, e)
                pending.append(adapter)
        for adapter in pending:
            self._spawn(f"connect-{adapter.network}", partial(self._connect_later, adapter))
        self._spawn("timer", self._timer)
        systemd.notify("READY=1")

    def _connected(self, adapter: Adapter, bot_ids: frozenset[str]) -> None:
        self.curator.bot_ids |= bot_ids
        self._spawn(f"effects-{adapter.network}", lambda: self._effects(adapter))
        for source in adapter.sources():
            self.sources.append((adapter.network, source))
            self._spawn(f"{adapter.network}-{source.name}", partial(self._supervise, adapter, source))

    def _connect_later(self, adapter: Adapter) -> None:
        for attempt in range(1, 10_000):
            if self.stop.wait(min(300.0, 2.0 ** attempt) * random.uniform(0.5, 1.0)):
                return
            try:
                bot_ids = adapter.connect()
            except PermanentError as e:
                log.error("%s: %s; stopping", adapter.network, e)
                self.stop.set()
                return
            except Exception as e:  # noqa: BLE001
                log.warning("%s: still cannot connect (%s)", adapter.network, e)
            else:
                self._connected(adapter, bot_ids)
                return

    def run_forever(self) -> None:
        """Run until SIGTERM/SIGINT, then stop within a few seconds."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())
        self.start()
        watchdog = systemd.watchdog_interval()
        while not self.stop.wait(watchdog or 0.5):
            if watchdog and all(t.is_alive() for t in self.threads):
                systemd.notify("WATCHDOG=1")
        systemd.notify("STOPPING=1")
        self.shutdown()

    def shutdown(self, timeout: float = 4.0) -> None:
        self.stop.set()
        for q in self.queues.values():
            q.put(None)
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for network, source in self.sources:  # a source still blocked in a call is stopped too
            self._note(self.store.source_stopped, network, source.name)
        for adapter in self.adapters:
            adapter.close()
        log.info("stopped")

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self.threads.append(t)

    # ---- events in ------------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        for intent in self.curator.handle(event):
            self._enqueue(intent)

    def _enqueue(self, intent: Intent) -> None:
        with self._queued_lock:
            if intent.key in self._queued:
                return
            self._queued.add(intent.key)
        if intent.network in self.queues:  # else left pending for a run with that network on
            self.queues[intent.network].put(intent)

    def _supervise(self, adapter: Adapter, source: Source) -> None:
        failures, network = 0, adapter.network
        while not self.stop.is_set():
            started = time.monotonic()
            self._note(self.store.source_started, network, source.name, source.mode,
                       restart=failures > 0)
            try:
                log.info("%s %s: listening (%s)", network, source.name, source.mode)
                source.run(self._emitter(network, source), self.stop)
            except Exception as e:  # noqa: BLE001 - a source must never take the bot down
                log.warning("%s %s failed: %s", network, source.name, e)
                self._note(self.store.source_failed, network, source.name, str(e))
            if self.stop.is_set():
                self._note(self.store.source_stopped, network, source.name)
                return
            failures = 1 if time.monotonic() - started > 60 else failures + 1
            delay = min(300.0, 2 ** min(failures - 1, 8)) * random.uniform(0.5, 1.0)
            log.info("%s %s: restarting in %.1f s", adapter.network, source.name, delay)
            self.stop.wait(delay)

    @staticmethod
    def _note(write: Callable[..., None], *args: object, **kwargs: object) -> bool:
        """A bookkeeping write (health, intents) that must not kill the thread making it when the
        store fails (disk full, locked for longer than the busy timeout): logged; the caller's
        loop goes on and what was not written is redone later."""
        try:
            write(*args, **kwargs)
            return True
        except Exception as e:  # noqa: BLE001
            log.error("cannot write to the database (%s: %s); will retry", type(e).__name__, e)
            return False

    def _emitter(self, network: str, source: Source) -> Emit:
        """`emit` for one source, noting when it last delivered an event (for `status`)."""
        last = 0.0

        def emit(event: Event) -> None:
            nonlocal last
            if time.monotonic() - last > EVENT_MARK_INTERVAL:
                last = time.monotonic()
                self.store.source_alive(network, source.name, source.mode, event=True,
                                        reason=source.reason)
            self.emit(event)

        return emit

    # ---- effects out ----------------------------------------------------------------------------

    def _effects(self, adapter: Adapter) -> None:
        q = self.queues[adapter.network]
        self._note(self._enqueue_pending, adapter)
        while not self.stop.is_set():
            intent = q.get()
            if intent is None:
                return
            retry_in = None
            try:
                retry_in = self._perform(adapter, intent)
            except Exception as e:  # noqa: BLE001 - the store failed: the intent stays pending
                log.error("cannot write down %s (%s: %s); the timer retries it (the adapter's "
                          "effects are idempotent)", describe(intent.action), type(e).__name__, e)
            if retry_in is None:
                with self._queued_lock:
                    self._queued.discard(intent.key)
            else:
                self._retry_later(intent, retry_in)

    def _retry_later(self, intent: Intent, delay: float) -> None:
        """Put a transiently failed intent back in its queue after `delay`. It stays marked as
        queued meanwhile, so the timer's sweep of pending intents does not add it twice."""
        again = replace(intent, attempts=intent.attempts + 1)
        timer = threading.Timer(delay, self.queues[intent.network].put, [again])
        timer.daemon = True
        timer.start()

    def _enqueue_pending(self, adapter: Adapter) -> None:
        for intent in self.store.pending_intents(adapter.network):
            self._enqueue(intent)

    def _perform(self, adapter: Adapter, intent: Intent) -> float | None:
        """Carry out one intent; return the delay before a retry, or None once it is settled."""
        try:
            result = adapter.perform(intent.action)
        except PermanentError as e:
            log.warning("gave up %s: %s", describe(intent.action), e)
            self.store.intent_failed(intent, str(e), final=True)
        except Exception as e:  # noqa: BLE001 - transient: retried with backoff
            delay = min(RETRY_MAX, RETRY_FIRST * 2 ** intent.attempts) * random.uniform(0.8, 1.2)
            log.warning("will retry %s in %.0f s: %s", describe(intent.action), delay, e)
            self.store.intent_failed(intent, str(e), final=False)
            return delay
        else:
            self.store.intent_done(intent, result)
            log.info("done %s", describe(intent.action))
        return None

    def _publish_digest(self) -> None:
        """Publish the scheduled digest once per period (the digests table remembers what is
        done, so a restart never posts it twice)."""
        if not self.config.digest.schedule:
            return
        from datetime import datetime, timezone

        from bot.digest import publish_due

        try:
            publish_due(self.store, self.config, self.adapters, datetime.now(timezone.utc))
        except Exception as e:  # noqa: BLE001 - retried on the next tick
            log.warning("digest publication failed, will retry: %s", e)

    def _timer(self) -> None:
        """Expire unanswered prompts and re-queue effects that failed for a transient reason
        (every TICK); in between, take up the intents another process wrote (the moderation
        desk of `numpolville serve`), so that its decisions reach the networks within seconds."""
        last = time.monotonic()
        while not self.stop.wait(min(TICK, PENDING_POLL)):
            if time.monotonic() - last >= TICK:
                last = time.monotonic()
                self._note(self._tick)
            else:
                for adapter in self.adapters:
                    self._note(self._enqueue_pending, adapter)
                self._note(self._release_waited_copies)

    def _release_waited_copies(self) -> None:
        """Bridged copies whose original did not come in time are asked themselves (checked every
        PENDING_POLL: the wait is short)."""
        for network, uri in self.store.copies_waited(self.config.policy.bridged_wait_seconds):
            self.emit(BridgeWaitOver(network, uri))  # type: ignore[arg-type]

    def _tick(self) -> None:
        for network, source in self.sources:
            self.store.source_alive(network, source.name, source.mode, reason=source.reason)
        self._publish_digest()
        for network, uri in self.store.prompts_older_than(self.config.policy.prompt_timeout_hours):
            self.emit(PromptTimedOut(network, uri))  # type: ignore[arg-type]
        for adapter in self.adapters:
            self._enqueue_pending(adapter)


def build_adapters(config: Config, store: Store) -> list[Adapter]:
    """The enabled networks' adapters; each SDK is imported only when its network is on."""
    adapters: list[Adapter] = []
    if config.mastodon.enabled:
        from bot.mastodon import MastodonAdapter

        adapters.append(MastodonAdapter(config, store))
    if config.bluesky.enabled:
        from bot.bluesky import BlueskyAdapter

        adapters.append(BlueskyAdapter(config, store))
    return adapters
