"""The one door events come in by: load the context, ask the rules, store the decision.

Events from every source pass here one at a time (a lock), so two sightings of one post can never
both look new. What comes out are the network effects to carry out, already written down as
intents: a crash between deciding and doing loses nothing and repeats nothing.
"""

from __future__ import annotations

import logging
import threading

from bot import rules
from bot.config import Config
from bot.model import Event, Ignore, Unseen
from bot.store import Intent, Store

log = logging.getLogger("numpolville.curator")


class Curator:
    def __init__(self, config: Config, store: Store) -> None:
        self.config, self.store = config, store
        self.bot_ids: set[str] = set()
        self._lock = threading.Lock()

    def handle(self, event: Event) -> list[Intent]:
        with self._lock:
            ctx = self.store.context(event, frozenset(self.bot_ids))
            actions = rules.decide(event, ctx, self.config)
            for action in actions:
                level = logging.DEBUG if isinstance(action, (Ignore, Unseen)) else logging.INFO
                log.log(level, "%s", describe(action), extra={"action": type(action).__name__})
            return self.store.apply(event, actions)


def describe(action: object) -> str:
    """One readable line per action, for the console and the JSON log."""
    name = type(action).__name__.lower()
    post = getattr(action, "post", None)
    uri = post.uri if post else getattr(action, "uri", "")
    handle = post.author.handle if post else getattr(action, "handle", "")
    who = f" @{handle}" if handle else ""
    reason = getattr(action, "reason", "") or getattr(action, "text_key", "")
    category = getattr(action, "category", None)
    return " ".join(filter(None, [name, category and f"[{category}]", f"{uri}{who}",
                                  reason and f"— {reason}"]))
