"""The site as a person uses it, in Debian's Chromium driven by Selenium (Debian's chromedriver):
a moderator signs in, classifies an item and withdraws another, and the public page and feed
show it; axe-core (npm, tests/web) checks each page in that browser. Screenshots in artifacts/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import feedparser
import httpx
import pytest
from test_digest_data import add, utc
from web_server import MODERATOR, PASSWORD

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
AXE = ROOT / "tests" / "web" / "node_modules" / "axe-core" / "axe.min.js"


def _need(what: str, found: object) -> None:
    if found:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI (make install)")
    pytest.skip(f"{what} is not installed (make install); CI runs this test")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    _need("chromium", chromium)
    _need("chromedriver (chromium-driver)", driver_path)
    _need("axe-core (npm, tests/web)", AXE.exists())
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium  # type: ignore[assignment]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1200,1400", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--lang=fr"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def axe_violations(driver) -> list[dict]:  # type: ignore[no-untyped-def]
    """axe-core injected into the loaded page (DevTools evaluation: the page's CSP still forbids
    any script of its own); the serious and critical violations."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations))"
        ".catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n.get("html", "")[:120] for n in v["nodes"][:3]]}
            for v in result if v["impact"] in ("serious", "critical")]


def shot(driver, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"site-{name}.png"
    driver.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_pages_are_accessible_and_a_moderator_works_in_the_browser(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = browser
    # Two items for the moderator: one to classify, one (classified) to withdraw.
    todo = add(site.store, 900, "mastodon", "ines@piaille.example", "Un tiers-lieu numérique à Roubaix",
               utc(2025, 3, 28, 15), state="prompted", link="https://tiers-lieu.example/roubaix",
               title="Le tiers-lieu numérique de Roubaix")
    gone = add(site.store, 901, "bluesky", "jules.bsky.social", "Un rapport à retirer",
               utc(2025, 3, 28, 16), category="initiative", link="https://rapport.example/retirer",
               title="Un rapport à retirer")

    problems = {}
    for name, path in [("home", "/"), ("category-projet", "/category/projet"),
                       ("search-quartier", "/search?q=quartier"), ("embed", "/embed/projet"),
                       ("login", "/login")]:
        driver.get(site.url + path)
        assert driver.find_element(By.TAG_NAME, "h1").text, path
        problems[path] = axe_violations(driver)
        shot(driver, name)

    # Sign in through the form, as a person would.
    driver.get(site.url + "/moderation/")
    assert driver.current_url.startswith(site.url + "/login?next=")
    driver.find_element(By.ID, "username").send_keys(MODERATOR)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    # click() returns before the form's redirect is followed: wait for it (a loaded machine is slow)
    WebDriverWait(driver, 10).until(expected_conditions.url_to_be(site.url + "/moderation/"))
    assert driver.current_url == site.url + "/moderation/"
    problems["/moderation/"] = axe_violations(driver)
    shot(driver, "moderation")

    def follow(element):
        """Click what navigates, then wait for the next page: click() returns before it loads."""
        page = driver.find_element(By.TAG_NAME, "html")
        element.click()
        WebDriverWait(driver, 10).until(expected_conditions.staleness_of(page))
        WebDriverWait(driver, 10).until(
            lambda d: d.execute_script("return document.readyState") == "complete")

    # Classify the prompted item as "projet".
    entry = driver.find_element(By.CSS_SELECTOR, f"li.entry[data-uri='{todo.uri}']")
    form = entry.find_element(By.CSS_SELECTOR, "form[action='/moderation/classify']")
    Select(form.find_element(By.TAG_NAME, "select")).select_by_value("projet")
    follow(form.find_element(By.TAG_NAME, "button"))
    assert driver.current_url == site.url + "/moderation/"
    assert not driver.find_elements(By.CSS_SELECTOR, f"li.entry[data-uri='{todo.uri}']")

    # Withdraw the classified one, from the "Classés" tab.
    follow(driver.find_element(By.LINK_TEXT, "Classés"))
    entry = driver.find_element(By.CSS_SELECTOR, f"li.entry[data-uri='{gone.uri}']")
    follow(entry.find_element(By.CSS_SELECTOR, "form[action='/moderation/withdraw'] button"))
    follow(driver.find_element(By.LINK_TEXT, "Historique"))
    history = driver.find_element(By.TAG_NAME, "table").text
    assert "classé : Projet" in history and "retiré" in history and MODERATOR in history
    shot(driver, "moderation-history")

    # The public page and the feed show it.
    driver.get(site.url + "/category/projet")
    assert "Le tiers-lieu numérique de Roubaix" in driver.page_source
    shot(driver, "category-after")
    driver.get(site.url + "/category/initiative")
    assert "Un rapport à retirer" not in driver.page_source
    feed = feedparser.parse(httpx.get(site.url + "/feeds/all.atom").content)
    titles = [e.title for e in feed.entries]
    assert "Le tiers-lieu numérique de Roubaix" in titles and "Un rapport à retirer" not in titles

    assert all(not v for v in problems.values()), problems
