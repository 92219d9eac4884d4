"""Log in once, then live on the saved session: `createSession` is limited to 30 per 5 minutes and
300 per day, and a bot restarted by a supervisor in a loop must not burn through that.

The session string (handle, DID, access and refresh tokens) sits in a 0600 file next to the
database and is rewritten whenever the SDK refreshes the tokens. Nothing here logs a secret.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from atproto import Client, Session, SessionEvent
from atproto_client.exceptions import AtProtocolError

from bot.config import BlueskyConfig

log = logging.getLogger("numpolville.bluesky")
SESSION_FILE = ".bluesky-session"


def session_path(database: Path) -> Path:
    return database.parent / SESSION_FILE


def open_client(config: BlueskyConfig, path: Path) -> tuple[Client, str]:
    """A logged-in client and the bot's DID. The saved session is tried first; a password login
    happens only when there is none or the server refuses it (expired refresh token).

    The profile is never fetched at login: the bot does not need it, and an AppView that has not
    indexed the account yet answers "Profile not found", which would fail the login."""
    client = Client(base_url=config.service)
    client.on_session_change(lambda event, session: _save(path, session, event))
    saved = _load(path, config.handle)
    if saved:
        try:
            client.login(session_string=saved, fetch_bsky_profile=False)
            client.com.atproto.server.get_session()  # refreshes the tokens if they are stale
            return client, Session.decode(saved).did
        except AtProtocolError as e:
            log.info("saved Bluesky session refused (%s); logging in again", type(e).__name__)
            client = Client(base_url=config.service)
            client.on_session_change(lambda event, session: _save(path, session, event))
    client.login(config.handle, config.password, fetch_bsky_profile=False)
    return client, Session.decode(client.export_session_string()).did


def _load(path: Path, handle: str) -> str | None:
    """The saved session string, if it belongs to this handle."""
    try:
        saved = path.read_text(encoding="utf-8").strip()
        return saved if saved and Session.decode(saved).handle == handle else None
    except (OSError, ValueError):
        return None


def _save(path: Path, session: Session, event: SessionEvent) -> None:
    """Write the session atomically, readable by the owner only."""
    if event == SessionEvent.IMPORT:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(session.encode())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    log.info("Bluesky session %s saved", event.value)
