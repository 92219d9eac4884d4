"""The HTML digest as a person sees it: opened from a local file in headless Chromium (Debian
`chromium`), its rendered DOM checked, and a screenshot kept in artifacts/digest-week.png."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import lxml.html
import pytest
from test_digest_data import NOW, build_store, config

from bot.digest import build_digest, period_from_args, write_digest

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("chromium is required in CI (apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium); CI runs this test")


def run(args: list[str], tmp: Path) -> str:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    out = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                         capture_output=True, text=True, timeout=120, check=True)
    return out.stdout


def test_html_digest_in_chromium(tmp_path):
    store = build_store(tmp_path / "x.db")
    period = period_from_args(now=NOW, tz_name="Europe/Paris", week=True)
    page = Path(write_digest(store, config(), "html", tmp_path / "digest.html", period))
    digest = build_digest(store, config(), period)

    dom = lxml.html.document_fromstring(run(["--dump-dom", page.as_uri()], tmp_path))
    assert dom.get_element_by_id("digest-title").text_content() == "Veille #numpolville"
    assert "Semaine 13 · du 24 au 30 mars 2025" in dom.text_content()
    headings = [h.text_content().split(" (")[0] for h in dom.find_class("category")]
    assert headings == ["Projet", "Contexte", "Initiative", "Prospective", "À classer"]
    titles = [h.text_content() for h in dom.xpath("//div[@class='entry']/h3")]
    assert "Médiation numérique à Blois : le bilan d'une année" in titles
    assert "La fracture numérique dans les quartiers prioritaires" in titles
    assert len(titles) == digest.total == 6
    # The chart: 8 periods, the bars' segments match the counts, the current bar is tallest here.
    bars = dom.xpath("//*[local-name()='svg'][@id='chart']/*[local-name()='g'][@class='bar']")
    assert [b.get("data-period") for b in bars] == [f"S{w:02d}" for w in range(6, 14)]
    assert [int(b.get("data-total")) for b in bars] == [p.total for p in digest.series]
    current = {r.get("data-category"): int(r.get("data-count"))
               for r in bars[-1].xpath("./*[local-name()='rect']")}
    assert current == {"projet": 1, "contexte": 2, "initiative": 1, "prospective": 1, "unclassified": 1}
    heights = [sum(float(r.get("height")) for r in b.xpath("./*[local-name()='rect']")) for b in bars]
    assert heights[-1] == max(heights) > 0 and heights[0] == 0
    assert [c.get("data-category") for c in dom.xpath("//table[@id='counts']//tr[@data-category]")] == [
        "projet", "contexte", "initiative", "prospective", "unclassified"]
    assert not dom.xpath("//script"), "the page needs no script"

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "digest-week.png"
    shot.unlink(missing_ok=True)
    run([f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()], tmp_path)
    assert shot.exists() and shot.stat().st_size > 20_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shutil.copy(page, ARTIFACTS / "digest-week.html")
