"""Serving the web application with uvicorn: alone (`numpolville serve`, which stops on SIGTERM
or Ctrl-C like `run`), or in a thread of `numpolville run` when `[web] enabled`."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Generator
from typing import Any

import uvicorn

from bot.config import Config
from bot.store import Store
from bot.web.app import create_app

log = logging.getLogger("numpolville.web")


def uvicorn_config(config: Config, app: Any) -> uvicorn.Config:
    """X-Forwarded-For and -Proto are believed only from `[web] trusted_proxies` (uvicorn's own
    default would trust 127.0.0.1)."""
    host, _, port = config.web.bind.rpartition(":")
    trusted = list(config.web.trusted_proxies)
    return uvicorn.Config(app, host=host.strip("[]"), port=int(port), proxy_headers=bool(trusted),
                          forwarded_allow_ips=trusted or "", server_header=False,
                          access_log=False, log_level="warning", lifespan="off")


def serve(config: Config, store: Store) -> None:
    """`numpolville serve`: until SIGTERM or SIGINT, then a graceful stop and exit code 0, like
    `run` (uvicorn's own handlers would end the process by the signal again)."""
    server = _Server(uvicorn_config(config, create_app(config, store)))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: setattr(server, "should_exit", True))
    log.info("serving on http://%s", config.web.bind)
    server.run()
    log.info("stopped")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the handlers are serve()'s


class Background:
    """The site in a thread: of `numpolville run` (where `app`'s decisions go to the runtime's
    `emit`, so their effects are queued at once), of the tests and of the benchmarks. `port`
    overrides `[web] bind`'s (0: any free one, then read `port`)."""

    def __init__(self, config: Config, app: Any, *, port: int | None = None) -> None:
        settings = uvicorn_config(config, app)
        if port is not None:
            settings.port = port
        self.server = uvicorn.Server(settings)
        self.thread = threading.Thread(target=self._run, name="web", daemon=True)

    def _run(self) -> None:
        try:
            self.server.run()
        except SystemExit:  # uvicorn's way to say it cannot listen (logged): `start` reports it
            pass

    def start(self, timeout: float = 10.0) -> Background:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the site could not listen on {self.server.config.host}:"
                                   f"{self.server.config.port} (in use?)")
            time.sleep(0.02)
        log.info("serving the site on http://%s:%s", self.server.config.host, self.port)
        return self

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self, timeout: float = 3.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
