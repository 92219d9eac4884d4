"""Serving the web application with uvicorn: alone (`numpolville serve`, which stops on SIGTERM
or Ctrl-C like `run`), or in a thread of `numpolville run` when `[web] enabled`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import uvicorn

from bot.config import Config
from bot.model import Event
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
    """`numpolville serve`: until SIGTERM or SIGINT (uvicorn's handlers, in the main thread)."""
    server = uvicorn.Server(uvicorn_config(config, create_app(config, store)))
    log.info("serving on http://%s", config.web.bind)
    server.run()


class Background:
    """The site in a thread of `numpolville run`: decisions go to the runtime's `emit`, so their
    effects are queued at once. It reads through a store connection of its own."""

    def __init__(self, config: Config, dispatch: Callable[[Event], Any]) -> None:
        self.store = Store(config.database)
        self.server = uvicorn.Server(uvicorn_config(config, create_app(config, self.store,
                                                                       dispatch=dispatch)))
        self.thread = threading.Thread(target=self.server.run, name="web", daemon=True)

    def start(self) -> None:
        self.thread.start()
        log.info("serving the site on http://%s", self.server.config.host + ":" +
                 str(self.server.config.port))

    def stop(self, timeout: float = 3.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.store.close()
