"""Issue 14: the site over the synthetic store of 1,000,000 items, served by uvicorn on
127.0.0.1 as `numpolville serve` does. Server-side times (from the request's arrival in the app
to the last bytes of its answer handed to uvicorn, measured by a wrapper around the ASGI app),
p50 and p95 per page, then requests/s with 20 concurrent clients (in another process). `/` is
measured cold (its digest built for every request) and as served (the built page kept
`cache_seconds`, 2 s by default)."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.store import END
from bot.config import parse
from bot.store import Store
from bot.web.app import create_app
from bot.web.server import Background

PATHS = {
    "home": "/",
    "category": "/category/projet",
    "category_page_50": "/category/projet?page=50",
    "search": "/search?q=site1234",
    "search_two_words": "/search?q=titre%20site77",
    "search_everywhere": "/search?q=inclusion",  # a word in every item: the worst case
    "feed_atom": "/feeds/all.atom",
    "feed_category_json": "/feeds/contexte.json",
    "archive": "/archive/",
}


class Timed:
    """The app, timing each request server-side (into `times[path]`)."""

    def __init__(self, app: Any) -> None:
        self.app, self.times = app, dict[str, list[float]]()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()

        async def timed_send(message: Any) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                # Noted before the last bytes go: the client cannot have them (and ask again) first.
                key = scope["path"] + ("?" + scope["query_string"].decode() if scope["query_string"] else "")
                self.times.setdefault(key, []).append(time.perf_counter() - t0)
            await send(message)

        await self.app(scope, receive, timed_send)


def _quantiles(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=20, method="inclusive") if len(values) > 1 else values * 19
    return {"p50": statistics.median(values), "p95": q[18], "n": len(values)}


def run(path: Path, *, requests: int = 60, concurrency: int = 20, seconds: float = 5.0) -> dict[str, Any]:
    config = parse({"database": str(path), "web": {"bind": "127.0.0.1:8080"}}, "(bench)")
    store = Store(path, clock=lambda: END - timedelta(hours=12))  # Sunday of the last full week
    out: dict[str, Any] = {}
    for label, cache in (("cold", 0.0), ("served", 2.0)):
        app = Timed(create_app(config, store, secret="bench", cache_seconds=cache))
        served = Background(config, app, port=0).start()
        url = f"http://127.0.0.1:{served.port}"
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                names = PATHS if label == "served" else {"home": "/"}
                for name, p in names.items():
                    client.get(p)  # warm-up: templates compiled, pages of the database read
                    app.times.clear()
                    for _ in range(requests if name != "search_everywhere" else 10):
                        assert client.get(p).status_code == 200, p
                    out[f"{name}_{label}" if name == "home" else name] = _quantiles(app.times[p])
            if label == "served":  # the clients in another process: they must not share our GIL
                load = subprocess.run([sys.executable, "-m", "bench.web", url, str(concurrency),
                                       str(seconds)], capture_output=True, text=True, check=True,
                                      timeout=seconds + 60, cwd=Path(__file__).parent.parent)
                out["concurrent"] = json.loads(load.stdout)
        finally:
            served.stop()
    store.close()
    return out


async def _load(url: str, concurrency: int, seconds: float) -> dict[str, Any]:
    """`concurrency` clients, each asking in turn for /, a category page, a search and a feed,
    for `seconds`; bounded in time, on 127.0.0.1 only."""
    mix = [PATHS["home"], PATHS["category"], PATHS["search"], PATHS["feed_atom"]]
    clients = [httpx.AsyncClient(base_url=url, timeout=60) for _ in range(concurrency)]
    done = 0
    deadline = time.monotonic() + seconds  # from here: making the clients is not timed

    async def client(n: int) -> None:
        nonlocal done
        i = n
        while True:  # each client asks at least once
            r = await clients[n].get(mix[i % len(mix)])
            assert r.status_code == 200
            done += 1
            i += 1
            if time.monotonic() >= deadline:
                return

    t0 = time.monotonic()
    try:
        await asyncio.gather(*(client(n) for n in range(concurrency)))
    finally:
        for c in clients:
            await c.aclose()
    return {"clients": concurrency, "requests": done, "per_second": done / (time.monotonic() - t0)}

if __name__ == "__main__":  # the load clients: python -m bench.web URL CLIENTS SECONDS
    print(json.dumps(asyncio.run(_load(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))))
