"""bench/web.py on a small synthetic store: every page it measures answers 200 and is timed
server-side, and the 20-client load runs in its own process. No timing is asserted."""

from __future__ import annotations

from pathlib import Path

from bench import store as bs
from bench import web


def test_site_bench_runs_on_a_small_store(tmp_path: Path) -> None:
    out = web.run(bs.synthetic_store(3000, path=tmp_path / "s.db"), requests=3, concurrency=3, seconds=0.5)
    for name in [*web.PATHS, "home_cold"]:
        key = name if name != "home" else "home_served"
        assert out[key]["n"] >= 3 and 0 < out[key]["p50"] <= out[key]["p95"], key
    assert out["concurrent"]["clients"] == 3 and out["concurrent"]["requests"] > 0
