"""The `bot` self-label on the bot's Bluesky profile, on the reference PDS (and AppView): added at
connect without losing what the person put in the profile, never written twice, never over an
edit made at the same moment, and never a reason for the bot not to start.

Each test gets an account of its own: the profile is the account's, and the network is shared by
the whole session.
"""

from __future__ import annotations

import itertools
import logging
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from atproto import Client
from atproto_client.exceptions import BadRequestError
from atproto_client.models.utils import get_model_as_dict

from bot.bluesky.adapter import BlueskyAdapter
from bot.bluesky.profile import PROFILE, SELF_LABELS
from bot.config import Config, parse
from bot.store import Store
from tests.bsky_network import BlueskyNetwork

_serial = itertools.count()


def new_account(net: BlueskyNetwork) -> dict[str, Any]:
    """A fresh account (no profile record yet) and a client logged in as its owner."""
    handle = f"prof{time.time_ns() % 10**9}x{next(_serial)}.test"
    client = Client(base_url=net.pds_url)
    did = client.com.atproto.server.create_account(
        {"handle": handle, "email": f"{handle}@numpolville.test", "password": "prof-pass"}).did
    client.login(handle, "prof-pass", fetch_bsky_profile=False)
    return {"handle": handle, "did": did, "password": "prof-pass", "client": client}


@pytest.fixture
def account(bsky_network: BlueskyNetwork) -> dict[str, Any]:
    return new_account(bsky_network)


@pytest.fixture
def connect(bsky_network: BlueskyNetwork, account: dict[str, Any],
            tmp_path: Path) -> Iterator[Callable[..., BlueskyAdapter]]:
    """connect(**bluesky config, race=...) -> the adapter after `connect()`. `race(n)` runs before
    the bot's n-th profile write, as the person editing in the app at that moment would."""
    stores: list[Store] = []

    def make(race: Callable[[int], object] | None = None, **bluesky: Any) -> BlueskyAdapter:
        config = bot_config(bsky_network, account, tmp_path, **bluesky)
        stores.append(Store(config.database))
        adapter = BlueskyAdapter(config, stores[-1])
        write = adapter._write
        adapter.puts = []  # type: ignore[attr-defined]

        def spy(operation: str, call: Any, data: dict[str, Any]) -> Any:
            adapter.puts.append(data)  # type: ignore[attr-defined]
            if race:
                race(len(adapter.puts))  # type: ignore[attr-defined]
            return write(operation, call, data)

        adapter._write = spy  # type: ignore[method-assign]
        assert adapter.connect() == frozenset({account["did"]})
        return adapter

    yield make
    for store in stores:
        store.close()


def bot_config(net: BlueskyNetwork, account: dict[str, Any], tmp_path: Path, **bluesky: Any) -> Config:
    return parse({"database": str(tmp_path / "bot.db"),
                  "bluesky": {"enabled": True, "service": net.pds_url, "handle": account["handle"],
                              "app_password": account["password"], **bluesky}})


def on_pds(net: BlueskyNetwork, did: str) -> tuple[dict[str, Any] | None, str | None]:
    """The profile record as the PDS serves it (plain JSON, not through the SDK) and its CID."""
    res = httpx.get(f"{net.pds_url}/xrpc/com.atproto.repo.getRecord",
                    params={"repo": did, "collection": PROFILE, "rkey": "self"})
    if res.status_code == 400 and res.json()["error"] == "RecordNotFound":
        return None, None
    res.raise_for_status()
    return res.json()["value"], res.json()["cid"]


def head(net: BlueskyNetwork, did: str) -> str:
    """The repository's latest commit: unchanged means nothing at all was written."""
    return httpx.get(f"{net.pds_url}/xrpc/com.atproto.sync.getLatestCommit",
                     params={"did": did}).json()["cid"]


def edit(account: dict[str, Any], **fields: Any) -> None:
    """The person saves the profile in the app: their fields over what is there, no swap."""
    client, did = account["client"], account["did"]
    try:
        record = get_model_as_dict(client.com.atproto.repo.get_record(
            {"repo": did, "collection": PROFILE, "rkey": "self"}).value)
    except BadRequestError:  # no profile yet
        record = {"$type": PROFILE}
    client.com.atproto.repo.put_record({"repo": did, "collection": PROFILE, "rkey": "self",
                                        "record": {**record, **fields}})


def png() -> bytes:
    """A 1x1 PNG: the PDS checks what an avatar blob is."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def labels(record: dict[str, Any] | None) -> list[str]:
    return [v["val"] for v in ((record or {}).get("labels") or {}).get("values", [])]


def test_connect_adds_the_label_and_keeps_the_profile(
        bsky_network: BlueskyNetwork, account: dict[str, Any], connect: Callable[..., BlueskyAdapter],
        caplog: pytest.LogCaptureFixture) -> None:
    avatar = account["client"].upload_blob(png()).blob
    edit(account, displayName="Veille #numpolville", description="Je range les partages.",
         avatar=get_model_as_dict(avatar),
         labels={"$type": SELF_LABELS, "values": [{"val": "!no-unauthenticated"}]})
    before, _ = on_pds(bsky_network, account["did"])
    with caplog.at_level(logging.INFO, logger="numpolville.bluesky"):
        connect()
    after, cid = on_pds(bsky_network, account["did"])
    assert after is not None and before is not None
    assert labels(after) == ["!no-unauthenticated", "bot"]
    assert {k: v for k, v in after.items() if k != "labels"} == {
        k: v for k, v in before.items() if k != "labels"}
    assert after["avatar"]["ref"] == before["avatar"]["ref"]
    assert caplog.text.count("`bot` self-label added to the profile") == 1

    commit = head(bsky_network, account["did"])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="numpolville.bluesky"):
        again = connect()
    assert again.puts == [] and "self-label" not in caplog.text  # type: ignore[attr-defined]
    assert on_pds(bsky_network, account["did"])[1] == cid and head(bsky_network, account["did"]) == commit

    if bsky_network.has_appview:  # what people see: the AppView serves the self-labels
        appview = bsky_network.appview_client()
        bsky_network.wait_until(lambda: {"bot", "!no-unauthenticated"} <= {
            label.val for label in appview.app.bsky.actor.get_profile({"actor": account["did"]}).labels or []
            if label.src == account["did"]}, what="the bot label in the AppView's profile")


def test_a_fresh_account_gets_a_profile_record(bsky_network: BlueskyNetwork, account: dict[str, Any],
                                               connect: Callable[..., BlueskyAdapter]) -> None:
    assert on_pds(bsky_network, account["did"]) == (None, None)
    connect()
    record, _ = on_pds(bsky_network, account["did"])
    assert record == {"$type": PROFILE, "labels": {"$type": SELF_LABELS, "values": [
        {"$type": "com.atproto.label.defs#selfLabel", "val": "bot"}]}}


def test_switched_off_nothing_is_written(bsky_network: BlueskyNetwork, account: dict[str, Any],
                                         connect: Callable[..., BlueskyAdapter]) -> None:
    commit = head(bsky_network, account["did"])
    assert connect(set_bot_label=False).puts == []  # type: ignore[attr-defined]
    assert on_pds(bsky_network, account["did"]) == (None, None)
    assert head(bsky_network, account["did"]) == commit


@pytest.mark.parametrize("profile_before", [True, False], ids=["edited profile", "no profile yet"])
def test_an_edit_made_meanwhile_is_kept(bsky_network: BlueskyNetwork, account: dict[str, Any],
                                        connect: Callable[..., BlueskyAdapter], profile_before: bool) -> None:
    """The person saves the profile between the bot's read and its write: the bot's swap fails,
    it reads again and adds the label to the person's version."""
    if profile_before:
        edit(account, displayName="Avant")
    adapter = connect(race=lambda n: n == 1 and edit(account, displayName="Pendant",
                                                     description="écrit dans l'app"))
    record, _ = on_pds(bsky_network, account["did"])
    assert record is not None
    assert (record["displayName"], record["description"], labels(record)) == (
        "Pendant", "écrit dans l'app", ["bot"])
    assert len(adapter.puts) == 2  # type: ignore[attr-defined]
    assert ("swap_record" in adapter.puts[0]) == profile_before  # type: ignore[attr-defined]


def test_a_profile_that_keeps_changing_does_not_stop_the_bot(
        bsky_network: BlueskyNetwork, account: dict[str, Any], connect: Callable[..., BlueskyAdapter],
        caplog: pytest.LogCaptureFixture) -> None:
    edit(account, displayName="0")
    with caplog.at_level(logging.WARNING, logger="numpolville.bluesky"):
        adapter = connect(race=lambda n: edit(account, displayName=f"version {n}"))
    assert len(adapter.puts) == 3  # type: ignore[attr-defined]
    assert "`bot` label could not be added" in caplog.text and "ProfileBusy" in caplog.text
    assert labels(on_pds(bsky_network, account["did"])[0]) == []
