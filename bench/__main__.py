"""`make bench`: figures side by side with the SDK's reference loop; prints a rich table and
writes bench/results.json. `--quick` skips what starts servers (latency) and shortens loops."""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import ingest as bi
from bench import store as bs
from bench.record import read_frames, read_lines

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"


def load_corpus(corpus: Path = CORPUS) -> tuple[list[bytes], list[bytes], str]:
    frames = read_frames(corpus / "firehose.bin.gz")
    lines = read_lines(corpus / "jetstream.jsonl.gz")
    bot = json.loads((corpus / "meta.json").read_text())["bot_did"]
    return frames, lines, bot


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ingest_figures(frames: list[bytes], lines: list[bytes], bot: str, total: int) -> dict[str, Any]:
    bot_fh = bi.measure(bi.bot_path("firehose", bot), frames, total)
    sdk_total = max(len(frames), total // 8)
    sdk = bi.measure(bi.sdk_path(bot), frames, sdk_total)
    jet = bi.measure(bi.bot_path("jetstream", bot), lines, total * 2)
    assert bot_fh["events"] == sdk["events"], "the bot and the SDK loop disagree on the events"
    assert bot_fh["events"] == jet["events"], "the firehose and Jetstream paths disagree on the events"
    out = {"bot_firehose": bot_fh, "sdk_firehose": sdk, "bot_jetstream": jet,
           "ratio": bot_fh["per_second"] / sdk["per_second"], "events_per_pass": len(bot_fh["events"])}
    for v in (bot_fh, sdk, jet):
        v.pop("events")
    return out


def memory(total: int) -> dict[str, Any]:
    """In a fresh process, so that the SDK models loaded for the comparison do not count."""
    out = subprocess.run([sys.executable, "-m", "bench", "--memory-only", str(total)], check=True,
                         capture_output=True, text=True, cwd=HERE.parent)
    return json.loads(out.stdout)


def _memory(total: int) -> dict[str, Any]:
    frames, _, bot = load_corpus()
    path = bi.bot_path("firehose", bot, keep_events=False)  # the bench's own list would grow
    half = total // 2
    path.run(bi.loop(frames, half))
    gc.collect()
    mid = rss_mb()
    path.run(bi.loop(frames, total - half))
    gc.collect()
    end = rss_mb()
    return {"frames": total, "rss_mb": end, "rss_mid_mb": mid, "growth_second_half_mb": end - mid,
            "corpus_bytes_held": sum(map(len, frames)), "events": path.dropped}


def startup(runs: int = 5) -> dict[str, Any]:
    exe = str(Path(sys.executable).with_name("numpolville"))
    out = {}
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "c.toml"
        cfg.write_text(f'database = "{d}/empty.db"\n')
        for name, argv in (("help", [exe, "--help"]),
                           ("export_json", [exe, "export", "--format", "json", "--config", str(cfg)])):
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                subprocess.run(argv, check=True, capture_output=True)
                times.append(time.perf_counter() - t0)
            out[name] = statistics.median(times)
    return out


def end_to_end(bot: str, total: int, corpus: Path = CORPUS / "firehose.bin.gz") -> dict[str, Any]:
    b = bi.end_to_end_bot(corpus, total, bot)
    s = bi.end_to_end_sdk(corpus, max(4096, total // 6), bot)
    return {"bot": b, "sdk": s, "ratio": b["per_second"] / s["per_second"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("--quick", action="store_true", help="skip latency (starts servers), shorter loops")
    p.add_argument("--frames", type=int, default=200_000)
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--out", default=str(HERE / "results.json"))
    p.add_argument("--memory-only", type=int, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.memory_only:
        print(json.dumps(_memory(a.memory_only)))
        return 0
    total = a.frames if not a.quick else min(a.frames, 50_000)
    frames, lines, bot = load_corpus()
    res: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                       "corpus_frames": len(frames), "jetstream_lines": len(lines)}}
    steps = [("ingest", lambda: ingest_figures(frames, lines, bot, total)),
             ("end_to_end", lambda: end_to_end(bot, total // 2)),
             ("store", lambda: {"upserts": bs.upserts(),
                                "digest": bs.digest(bs.synthetic_store(a.items), runs=1 if a.quick else 3)}),
             ("memory", lambda: memory(1_000_000 if not a.quick else 200_000)),
             ("startup", startup)]
    if not a.quick:
        from bench import feeds, latency
        steps.insert(3, ("latency", latency.run))
        steps.insert(4, ("feeds", lambda: feeds.run(bs.synthetic_store(a.items))))
    for name, fn in steps:
        print(f"… {name}", file=sys.stderr, flush=True)
        try:
            res[name] = fn()
        except Exception as e:  # a failed measurement is reported, never faked
            res[name] = {"error": f"{type(e).__name__}: {e}"}
    Path(a.out).write_text(json.dumps(res, indent=1, default=str) + "\n")
    table(res)
    return 0


def _get(res: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if not isinstance(res, dict) or k not in res:
            return None
        res = res[k]
    return res


def table(res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="numpolville bench")
    for col in ("measure", "figure", "target", "met"):
        t.add_column(col)

    def row(name: str, value: Any, fmt: str, target: str = "", ok: bool | None = None) -> None:
        shown = "n/a" if value is None else fmt.format(value)
        t.add_row(name, shown, target, "" if ok is None or value is None else ("yes" if ok else "NO"))

    g = lambda *k: _get(res, *k)  # noqa: E731
    from bench.latency import POLL_INTERVAL as latency_interval

    def rate(name: str, *keys: str, target: str = "", at_least: float | None = None) -> None:
        """A throughput: the best of the runs, the median in brackets."""
        best, median = g(*keys, "per_second"), g(*keys, "median_per_second")
        row(name, None if best is None else (best, median or best), "{0[0]:,.0f} ({0[1]:,.0f})",
            target, None if at_least is None or best is None else best >= at_least)

    rate("firehose bot path, frames/s (median)", "ingest", "bot_firehose")
    rate("firehose SDK loop, frames/s (median)", "ingest", "sdk_firehose")
    r = g("ingest", "ratio")
    row("firehose in process, bot / SDK", r, "{:.1f}x", ">= 20x", r is not None and r >= 20)
    row("events per corpus pass (same on both)", g("ingest", "events_per_pass"), "{}")
    rate("Jetstream in process, messages/s (median)", "ingest", "bot_jetstream",
         target=">= 1,000,000", at_least=1e6)
    rate("end to end bot, frames/s (median)", "end_to_end", "bot")
    rate("end to end SDK client, frames/s (median)", "end_to_end", "sdk")
    r = g("end_to_end", "ratio")
    row("end to end, bot / SDK", r, "{:.1f}x", ">= 6x", r is not None and r >= 6)
    polled = ("mastodon_polling", "gotosocial_nothing_live")  # nothing live: p95 < interval + 1 s
    for mode in ("mastodon_streaming", "akkoma_streaming", "gotosocial_followed_tag", *polled,
                 "bluesky"):
        v = g("latency", mode, "p95")
        limit = 1.0 + (latency_interval if mode in polled else 0.0)
        row(f"latency {mode} p50 / p95, s", None if v is None else (g("latency", mode, "p50"), v),
            "{0[0]:.2f} / {0[1]:.2f}", f"p95 < {limit:g} s", None if v is None else v < limit)
    cost = g("latency", "mastodon_streaming", "requests_per_hour_at_60s")
    row("reconciliation polls at poll_interval 60 s, requests/hour", cost, "{:.0f}",
        "of 3,600 (300 / 5 min)", None if cost is None else cost < 360)
    row("store upserts/s", g("store", "upserts", "per_second"), "{:,.0f}")
    worst = max((v["seconds"] for k, v in (g("store", "digest") or {}).items()
                 if isinstance(v, dict) and k in ("md", "html", "rss", "atom", "json")), default=None)
    row("weekly digest over 1M items, worst format, s", worst, "{:.2f}", "< 0.5 s",
        worst is not None and worst < 0.5)
    row("  of which the store query, s", g("store", "digest", "query_only", "seconds"), "{:.2f}")
    e = g("store", "digest", "entries")
    row("  entries listed / in the week", None if not e else (e.get("listed"), e.get("in_period")),
        "{0[0]:,} / {0[1]:,}")
    row("database bytes per item", g("store", "digest", "bytes_per_item"), "{:.0f}")
    for page in ("first", "deep"):
        for auth in ("no_token", "token"):
            v = g("feeds", f"{page}_{auth}")
            row(f"feed skeleton, {page} page, {auth.replace('_', ' ')}: req/s, p50 / p99 ms",
                None if not v else (v["per_second"], v["p50_ms"], v["p99_ms"]),
                "{0[0]:,.0f}, {0[1]:.1f} / {0[2]:.1f}", ">= 2,000, p99 < 25",
                None if not v else v["per_second"] >= 2000 and v["p99_ms"] < 25 and not v["errors"])
    for page in ("first", "deep"):
        row(f"  the store's query for the {page} page, ms", g("feeds", f"{page}_page_query_ms"), "{:.2f}")
    tok = g("feeds", "token_us")
    row("  a service token checked (key cached), µs", tok, "{:.0f}", "< 1,000",
        tok is not None and tok < 1000)
    m = g("memory", "rss_mb")
    row("RSS after 1M frames, MB", m, "{:.0f}", "< 150 MB", m is not None and m < 150)
    gr = g("memory", "growth_second_half_mb")
    row("RSS growth over the second half, MB", gr, "{:+.1f}", "flat", gr is not None and gr < 5)
    h = g("startup", "help")
    row("numpolville --help, s", h, "{:.2f}", "< 0.4 s", h is not None and h < 0.4)
    row("numpolville export --format json (empty), s", g("startup", "export_json"), "{:.2f}")
    Console().print(t)
    errors = {k: v["error"] for k, v in res.items() if isinstance(v, dict) and "error" in v}
    for k, e in errors.items():
        Console().print(f"[red]{k}: {e}[/]")


if __name__ == "__main__":
    raise SystemExit(main())
