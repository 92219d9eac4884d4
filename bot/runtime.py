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

from bot.adapter import Adapter, PermanentError, Source
from bot.config import Config
from bot.curator import Curator, describe
from bot.model import Event, PromptTimedOut
from bot.store import Intent, Store

log = logging.getLogger("numpolville.runtime")
TICK = 30.0


class Runtime:
    def __init__(self, config: Config, store: Store, adapters: list[Adapter]) -> None:
        self.config, self.store, self.adapters = config, store, adapters
        self.curator = Curator(config, store)
        self.stop = threading.Event()
        self.queues: dict[str, queue.Queue[Intent | None]] = {a.network: queue.Queue() for a in adapters}
        self.threads: list[threading.Thread] = []
        self._queued: set[str] = set()  # intents queued or in flight, never queued twice
        self._queued_lock = threading.Lock()

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        for adapter in self.adapters:
            self.curator.bot_ids |= adapter.connect()
        for adapter in self.adapters:
            self._spawn(f"effects-{adapter.network}", lambda a=adapter: self._effects(a))
            for source in adapter.sources():
                self._spawn(f"{adapter.network}-{source.name}",
                            lambda a=adapter, s=source: self._supervise(a, s))
        self._spawn("timer", self._timer)

    def run_forever(self) -> None:
        """Run until SIGTERM/SIGINT, then stop within a few seconds."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())
        self.start()
        while not self.stop.wait(0.5):
            pass
        self.shutdown()

    def shutdown(self, timeout: float = 4.0) -> None:
        self.stop.set()
        for q in self.queues.values():
            q.put(None)
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
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
        self.queues[intent.network].put(intent)

    def _supervise(self, adapter: Adapter, source: Source) -> None:
        failures = 0
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                log.info("%s %s: listening (%s)", adapter.network, source.name, source.mode)
                source.run(self.emit, self.stop)
            except Exception as e:  # noqa: BLE001 - a source must never take the bot down
                log.warning("%s %s failed: %s", adapter.network, source.name, e)
            if self.stop.is_set():
                return
            failures = 0 if time.monotonic() - started > 60 else failures + 1
            delay = min(300.0, 2 ** min(failures, 8)) * random.uniform(0.5, 1.0)
            log.info("%s %s: restarting in %.1f s", adapter.network, source.name, delay)
            self.stop.wait(delay)

    # ---- effects out ----------------------------------------------------------------------------

    def _effects(self, adapter: Adapter) -> None:
        q = self.queues[adapter.network]
        for intent in self.store.pending_intents(adapter.network):
            self._enqueue(intent)
        while not self.stop.is_set():
            intent = q.get()
            if intent is None:
                return
            self._perform(adapter, intent)
            with self._queued_lock:
                self._queued.discard(intent.key)

    def _perform(self, adapter: Adapter, intent: Intent) -> None:
        try:
            result = adapter.perform(intent.action)
        except PermanentError as e:
            log.warning("gave up %s: %s", describe(intent.action), e)
            self.store.intent_failed(intent, str(e), final=True)
        except Exception as e:  # noqa: BLE001 - retried by the timer
            log.warning("will retry %s: %s", describe(intent.action), e)
            self.store.intent_failed(intent, str(e), final=False)
        else:
            self.store.intent_done(intent, result)
            log.info("done %s", describe(intent.action))

    def _timer(self) -> None:
        """Expire unanswered prompts and re-queue effects that failed for a transient reason."""
        while not self.stop.wait(TICK):
            for network, uri in self.store.prompts_older_than(self.config.policy.prompt_timeout_hours):
                self.emit(PromptTimedOut(network, uri))  # type: ignore[arg-type]
            for adapter in self.adapters:
                for intent in self.store.pending_intents(adapter.network):
                    self._enqueue(intent)


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
