"""Issue 16: getFeedSkeleton on the 1M-item store, one uvicorn process, loaded by `wrk` with 50
connections: requests/s and p50/p99 on the first page and on a page half-way down the "all" feed
(its cursor seeks in the index), without and with a service token (the issuer's key cached). The
server keeps a page until the database changes, so under wrk's identical requests these are kept
pages; the store's query for a page (first and deep, what a change costs) is timed apart, in
process, and so is the check of one token.

The server runs in its own process (`python -m bench.feeds serve DB PORT DIDKEY`), so that wrk
and the server are the only two busy processes on the machine's cores.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from bot.config import parse
from bot.feedgen.feeds import GET_SKELETON, feed_uri, feeds
from bot.feedgen.skeleton import encode_cursor
from bot.store import Store

PUBLISHER = "did:plc:benchbot"
VIEWER = "did:plc:benchviewer"
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class Key:
    """A key signing compact JWTs as a PDS does (low-S signatures): ES256K (account keys) or ES256
    (`p256=True`); also used by tests."""

    def __init__(self, p256: bool = False) -> None:
        from atproto_crypto.did import format_did_key

        curve, self.alg = (ec.SECP256R1(), "ES256") if p256 else (ec.SECP256K1(), "ES256K")
        self.order = P256_ORDER if p256 else SECP256K1_ORDER
        self.private = ec.generate_private_key(curve)
        raw = self.private.public_key().public_bytes(serialization.Encoding.X962,
                                                     serialization.PublicFormat.UncompressedPoint)
        self.did_key = format_did_key(self.alg, raw)

    def sign(self, signing_input: bytes, high_s: bool = False) -> bytes:
        """r || s, low-S as atproto requires (`high_s`: its malleable twin, which must be refused)."""
        r, s = decode_dss_signature(self.private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        s = min(s, self.order - s)
        s = self.order - s if high_s else s
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def token(self, **claims: Any) -> str:
        enc = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")  # noqa: E731
        head = enc(json.dumps({"typ": "JWT", "alg": self.alg}).encode())
        body = enc(json.dumps(claims).encode())
        return f"{head}.{body}.{enc(self.sign(f'{head}.{body}'.encode()))}"


def _config(db: Path, port: int) -> Any:
    return parse({"database": str(db), "web": {"public_url": f"http://127.0.0.1:{port}"},
                  "bluesky": {"feeds": {"enabled": True}}})


def _keys(did_key: str) -> Any:
    from bot.feedgen.auth import KeyCache

    async def resolve(did: str, refresh: bool) -> str:
        return did_key

    return KeyCache(resolve)


def serve(db: Path, port: int, did_key: str) -> None:
    import uvicorn
    from starlette.applications import Starlette

    from bot.feedgen.routes import routes

    config = _config(db, port)
    app = Starlette(routes=routes(config, Store(db), keys=_keys(did_key)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wrk(url: str, header: str | None, seconds: int, connections: int) -> dict[str, Any]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if header:
        argv[1:1] = ["-H", header]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    found = re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    lat = {p: float(v) * scale[u] for p, v, u in found}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50_ms": lat["50"], "p99_ms": lat["99"], "errors": int(bad.group(1)) if bad else 0}


def _page_ms(store: Store, before: tuple[str, str] | None, runs: int = 300) -> float:
    """One page of 50 read from the store (no page kept: the query the server runs on a change)."""
    store.feed_page(None, before, 50)
    t0 = time.perf_counter()
    for _ in range(runs):
        store.feed_page(None, before, 50)
    return (time.perf_counter() - t0) / runs * 1e3


def token_cost(runs: int = 2000) -> float:
    """Microseconds to check one valid token whose issuer's key is cached."""
    from bot.feedgen.auth import ServiceAuth

    key = Key()
    auth = ServiceAuth("did:web:bench", _keys(key.did_key))
    header = "Bearer " + key.token(iss=VIEWER, aud="did:web:bench", exp=int(time.time()) + 3600,
                                   lxm=GET_SKELETON)

    async def loop() -> float:
        await auth.verify(header)
        t0 = time.perf_counter()
        for _ in range(runs):
            await auth.verify(header)
        return (time.perf_counter() - t0) / runs * 1e6

    return asyncio.run(loop())


def run(db: Path, seconds: int = 8, connections: int = 50) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (make .wrk.stamp)")
    port = _free_port()
    config = _config(db, port)
    store = Store(db)
    for f in feeds(config):
        store.feed_generator_published(f.key, feed_uri(PUBLISHER, f.key), None)
    total = len(store.feed_page(None, None, 100))  # warms the file cache too
    half = store._exec("SELECT count(*) FROM items INDEXED BY items_feed_all WHERE network = 'bluesky' "
                       "AND state = 'classified'").fetchone()[0] // 2
    deep = store._exec("SELECT created_at, uri FROM items INDEXED BY items_feed_all WHERE network = "
                       "'bluesky' AND state = 'classified' ORDER BY created_at DESC, uri DESC LIMIT 1 "
                       "OFFSET ?", (half,)).fetchone()
    out_seek = {f"{page}_page_query_ms": _page_ms(store, before) for page, before in (("first", None),
                                                                                    ("deep", deep))}
    store.close()
    key = Key()
    bearer = "Authorization: Bearer " + key.token(iss=VIEWER, aud=config.bluesky.feeds.service_did,
                                                  exp=int(time.time()) + 3600, lxm=GET_SKELETON)
    base = f"http://127.0.0.1:{port}/xrpc/{GET_SKELETON}?feed={feed_uri(PUBLISHER, 'all')}&limit=50"
    urls = {"first": base, "deep": f"{base}&cursor={encode_cursor(*deep)}"}
    server = subprocess.Popen([sys.executable, "-m", "bench.feeds", "serve", str(db), str(port), key.did_key])
    out: dict[str, Any] = {"feed_rows": half * 2, "first_page_rows": total, "connections": connections,
                           **out_seek}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the feed server did not start") from None
                time.sleep(0.1)
        for page, url in urls.items():
            for auth, header in (("no_token", None), ("token", bearer)):
                _wrk(url, header, 2, connections)  # warm-up
                out[f"{page}_{auth}"] = _wrk(url, header, seconds, connections)
    finally:
        server.terminate()
        server.wait(10)
    out["token_us"] = token_cost()
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        from bench import store as bs

        print(json.dumps(run(bs.synthetic_store()), indent=1))
