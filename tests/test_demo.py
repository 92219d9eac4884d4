"""`make demo` as a newcomer runs it: the whole scene on both local networks, then the digest."""

import os
import subprocess
import sys
from pathlib import Path

from bot.store import Store


def test_the_demo_runs_the_whole_scene(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    env = {**os.environ, "NUMPOLVILLE_DEMO_DIR": str(demo), "COLUMNS": "120"}
    run = subprocess.run([sys.executable, "-m", "bot.demo"], env=env, capture_output=True, text=True,
                         timeout=240, cwd=Path(__file__).parent.parent)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Demo done" in run.stdout
    assert "/category/contexte: HTTP 200" in run.stdout and "the Atelier share is on it" in run.stdout
    html = (demo / "digest.html").read_text()
    assert "Atelier" in html and "Contexte" in html
    store = Store(demo / "numpolville.db")
    states = {(r["network"], r["state"], r["category"]) for r in store.items()}
    for network in ("mastodon", "bluesky"):
        assert {(network, "classified", "contexte"), (network, "seen", None),
                (network, "deleted", None)} <= states
    assert store.health()["pending_intents"] == 0
    assert "signed in as @numpolbot" in (demo / "bot.log").read_text()
