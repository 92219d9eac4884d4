"""Record a corpus of real firehose frames from the local reference PDS.

    python -m bench.record --out bench/corpus/firehose.bin --jetstream-out bench/corpus/jetstream.jsonl

Starts the local PLC + PDS (no AppView: the recording needs only the repos), creates a crowd of
accounts, and writes a realistic mix: likes ~45%, posts ~25% (some replies, some replies to the
bot, ~1% tagged in mixed case: a tag facet, only the text, or only the record's `tags`; decoys such
as `#numpolvillexyz` or the bare word), reposts, follows (some of the bot), blocks, deletes (some of
tagged posts), profile updates. Then it reads the firehose from cursor 0 and writes every binary
message as a 4-byte big-endian length + the raw bytes (`.gz` if the name ends so), and the same
events as Jetstream JSON lines (documented format) from the decoded frames.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import libipld
from websockets.sync.client import connect

WORDS = ("quartier numérique inclusion atelier médiathèque tiers-lieu jeunes emploi formation "
         "contrat ville habitants mairie association projet écrans fracture accès droits "
         "démarches aidants conseiller France Services réseau wifi ordinateur tablette "
         "smartphone café rencontre 🌱 été école parents collège").split()
TAG_VARIANTS = ("NumPolVille", "numpolville", "NUMPOLVILLE", "numPolville", "NumpolVille")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _text(rng: random.Random, n: int | None = None) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n or rng.randint(4, 30)))


class Crowd:
    """Accounts writing to the PDS with plain `com.atproto.repo.*` calls."""

    def __init__(self, net: Any, extra: int, seed: int) -> None:
        from atproto import Client

        self.net, self.rng = net, random.Random(seed)
        self.clients: dict[str, Any] = {}  # did -> client
        for name in net.ACCOUNT_NAMES:
            self.clients[net.did(name)] = net.client(name)
        for i in range(extra):
            c = Client(base_url=net.pds_url)
            handle = f"u{i:03d}-{seed}.test"
            try:
                res = c.com.atproto.server.create_account(
                    {"handle": handle, "email": f"u{i}-{seed}@numpolville.test", "password": "pw-pass"})
            except Exception as e:  # noqa: BLE001 - fewer accounts is still a corpus
                print(f"create_account {handle}: {e}")
                break
            c.login(handle, "pw-pass", fetch_bsky_profile=False)
            self.clients[res.did] = c
        self.bot = net.did("bot")
        self.people = [d for d in self.clients if d != self.bot]
        self.posts: list[tuple[str, str, str]] = []  # (uri, cid, author)
        self.bot_posts: list[tuple[str, str]] = []
        self.tagged: list[str] = []
        self.others: list[str] = []  # uris of likes/reposts/follows, deletable
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def create(self, did: str, collection: str, record: dict[str, Any]) -> tuple[str, str]:
        record = {"$type": collection, **record}
        res = self.clients[did].com.atproto.repo.create_record(
            {"repo": did, "collection": collection, "record": record})
        return res.uri, res.cid

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def post(self, did: str, rng: random.Random, *, tagged: bool = False, to_bot: bool = False) -> None:
        text = _text(rng)
        record: dict[str, Any] = {"text": text, "createdAt": _now(), "langs": ["fr"]}
        with self.lock:
            parent = (rng.choice(self.bot_posts) if to_bot and self.bot_posts else
                      rng.choice(self.posts)[:2] if self.posts and rng.random() < 0.15 else None)
        if parent:
            ref = {"uri": parent[0], "cid": parent[1]}
            record["reply"] = {"root": ref, "parent": ref}
        what = "reply_to_bot" if to_bot else "reply" if parent else "post"
        if tagged:
            tag = rng.choice(TAG_VARIANTS)
            with self.lock:  # every style, in turn
                style = ("facet", "text", "tags")[self.counts.get("tagged", 0) % 3]
                self.counts["tagged"] = self.counts.get("tagged", 0) + 1
            what = f"tagged_{style}"
            if style == "tags":
                record["tags"] = [tag]
            else:
                record["text"] = body = f"{text} #{tag}"
                if style == "facet":
                    start = len(f"{text} ".encode())
                    record["facets"] = [{"index": {"byteStart": start, "byteEnd": len(body.encode())},
                                         "features": [{"$type": "app.bsky.richtext.facet#tag",
                                                       "tag": tag}]}]
        elif rng.random() < 0.01:  # decoys: must pass no rule
            record["text"] = f"{text} {rng.choice(('#numpolvillexyz', 'numpolville', '#NumPolVille2'))}"
            what = "decoy"
        uri, cid = self.create(did, "app.bsky.feed.post", record)
        with self.lock:
            self.posts.append((uri, cid, did))
            if tagged:
                self.tagged.append(uri)
            if did == self.bot:
                self.bot_posts.append((uri, cid))
        self.count(what)

    def delete(self, uri: str) -> None:
        did, collection, rkey = uri.removeprefix("at://").split("/", 2)
        self.clients[did].com.atproto.repo.delete_record(
            {"repo": did, "collection": collection, "rkey": rkey})

    def step(self, rng: random.Random) -> None:
        did = rng.choice(self.people)
        r = rng.random()
        with self.lock:
            target = rng.choice(self.posts) if self.posts else None
        if r < 0.45 and target:
            uri, _ = self.create(did, "app.bsky.feed.like",
                                 {"subject": {"uri": target[0], "cid": target[1]}, "createdAt": _now()})
            with self.lock:
                self.others.append(uri)
            self.count("like")
        elif r < 0.70 or not target:
            k = rng.random()
            self.post(did, rng, tagged=k < 0.015, to_bot=0.015 <= k < 0.03)
        elif r < 0.80:
            uri, _ = self.create(did, "app.bsky.feed.repost",
                                 {"subject": {"uri": target[0], "cid": target[1]}, "createdAt": _now()})
            with self.lock:
                self.others.append(uri)
            self.count("repost")
        elif r < 0.88:
            subject = self.bot if rng.random() < 0.1 else rng.choice(self.people)
            uri, _ = self.create(did, "app.bsky.graph.follow", {"subject": subject, "createdAt": _now()})
            with self.lock:
                self.others.append(uri)
            self.count("follow_bot" if subject == self.bot else "follow")
        elif r < 0.91:
            self.create(did, "app.bsky.graph.block",
                        {"subject": rng.choice(self.people), "createdAt": _now()})
            self.count("block")
        elif r < 0.96:
            with self.lock:
                pool = self.tagged if self.tagged and rng.random() < 0.15 else self.others
                gone = pool.pop(rng.randrange(len(pool))) if pool else None
            if gone:
                self.delete(gone)
                self.count("delete_tagged" if pool is self.tagged else "delete")
        else:
            self.clients[did].com.atproto.repo.put_record({
                "repo": did, "collection": "app.bsky.actor.profile", "rkey": "self",
                "record": {"$type": "app.bsky.actor.profile", "displayName": _text(rng, 2),
                           "description": _text(rng, 12)}})
            self.count("profile")

    def run(self, total: int, threads: int = 6) -> None:
        for _ in range(3):
            self.post(self.bot, self.rng)
        for _ in range(30):
            self.post(self.rng.choice(self.people), self.rng)
        per = total // threads

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(per):
                try:
                    self.step(rng)
                except Exception as e:  # noqa: BLE001 - e.g. a record deleted under us
                    print("step:", type(e).__name__, e)
        ts = [threading.Thread(target=worker, args=(self.rng.random(),)) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()


def read_firehose(url: str, quiet: float = 3.0) -> list[bytes]:
    frames: list[bytes] = []
    with connect(url + "?cursor=0", max_size=None, compression=None, proxy=None) as ws:
        while True:
            try:
                m = ws.recv(timeout=quiet, decode=False)
            except TimeoutError:
                return frames
            frames.append(m)


def write_frames(path: Path, frames: list[bytes]) -> None:
    data = b"".join(len(f).to_bytes(4, "big") + f for f in frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data, 9, mtime=0))
    else:
        path.write_bytes(data)


def read_frames(path: str | Path) -> list[bytes]:
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    out, i = [], 0
    while i < len(data):
        n = int.from_bytes(data[i:i + 4], "big")
        out.append(data[i + 4:i + 4 + n])
        i += 4 + n
    return out


def read_lines(path: str | Path) -> list[bytes]:
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return [line for line in data.split(b"\n") if line]


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, bytes):  # a CID link (libipld decodes links to their bytes)
        return {"$link": libipld.encode_multibase("b", v)}
    return v


def to_jetstream(frames: list[bytes]) -> list[bytes]:
    """The events of the frames as Jetstream would send them (one JSON object per op)."""
    lines, t_us = [], 1_725_000_000_000_000
    for frame in frames:
        header, body = libipld.decode_dag_cbor_multi(frame)
        t_us += 997
        kind = header.get("t")
        if kind == "#commit":
            blocks = libipld.decode_car(body["blocks"])[1] if body.get("blocks") else {}
            for op in body.get("ops") or ():
                collection, _, rkey = op["path"].partition("/")
                action = op["action"]
                commit: dict[str, Any] = {"rev": body["rev"], "operation": action,
                                          "collection": collection, "rkey": rkey}
                if action != "delete":
                    cid = op["cid"]
                    commit["record"] = _jsonable(blocks.get(cid))
                    commit["cid"] = libipld.encode_multibase("b", cid)
                event = {"did": body["repo"], "time_us": t_us, "kind": "commit", "commit": commit}
                lines.append(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())
        elif kind in ("#identity", "#account"):
            name = kind[1:]
            payload = {k: v for k, v in body.items() if k != "seq"}
            event = {"did": body.get("did"), "time_us": t_us, "kind": name, name: payload}
            lines.append(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.record")
    p.add_argument("--out", default="bench/corpus/firehose.bin.gz")
    p.add_argument("--jetstream-out", default="bench/corpus/jetstream.jsonl.gz")
    p.add_argument("--ops", type=int, default=3000)
    p.add_argument("--accounts", type=int, default=40)
    p.add_argument("--seed", type=int, default=8)
    a = p.parse_args(argv)
    from tests.bsky_network import BlueskyNetwork

    with BlueskyNetwork(appview=False) as net:
        net.start()
        t0 = time.monotonic()
        crowd = Crowd(net, a.accounts, a.seed)
        crowd.run(a.ops)
        print(f"wrote {sum(crowd.counts.values())} ops in {time.monotonic() - t0:.0f} s: "
              f"{dict(sorted(crowd.counts.items()))}")
        frames = read_firehose(net.firehose_url)
        accounts = {"bot": net.did("bot")}
    out = Path(a.out)
    write_frames(out, frames)
    lines = to_jetstream(frames)
    jet = Path(a.jetstream_out)
    data = b"".join(line + b"\n" for line in lines)
    jet.write_bytes(gzip.compress(data, 9, mtime=0) if jet.suffix == ".gz" else data)
    meta = {"bot_did": accounts["bot"], "tag": "numpolville", "frames": len(frames),
            "jetstream_lines": len(lines), "counts": crowd.counts}
    (out.parent / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{len(frames)} frames ({sum(map(len, frames))} bytes) -> {out}; {len(lines)} lines -> {jet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
