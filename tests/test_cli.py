"""The CLI, run as a person would: exit codes, export fields, stats, classify, forget."""

import csv
import io
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot import model as m
from bot.cli import app
from bot.config import parse
from bot.curator import Curator
from bot.export import FIELDS
from bot.store import Store

runner = CliRunner()
T0 = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """A config file and a store with two items, one classified and boosted."""
    db = tmp_path / "db.sqlite"
    conf = tmp_path / "c.toml"
    conf.write_text(f'database = "{db}"\n[mastodon]\naccess_token = "SECRET-TOK"\n')
    store = Store(db)
    cur = Curator(parse({}), store)
    alice = m.Author("mastodon", "1", "alice@home.test", follows_bot=True)
    for uri in ("u1", "u2"):
        post = m.Post("mastodon", uri, uri, f"https://home.test/{uri}", alice, f"lien {uri} #numpolville",
                      T0, tags=frozenset({"numpolville"}))
        [prompt] = cur.handle(m.PostSeen(post))
        store.intent_done(prompt, f"P{uri} P{uri}")
    [_, boost] = cur.handle(m.PostSeen(m.Post("mastodon", "r1", "r1", "x", alice, "2", T0, reply_to="Pu1")))
    store.intent_done(boost, "b1")
    return conf


def test_export_json_has_the_documented_fields(world: Path) -> None:
    r = runner.invoke(app, ["export", "--config", str(world), "--format", "json"])
    assert r.exit_code == 0, r.output
    items = json.loads(r.stdout)
    assert [tuple(i) for i in items] == [FIELDS, FIELDS]
    first = items[0]
    assert first["category"] == "contexte" and first["boosted"] is True and first["state"] == "classified"
    assert first["author"] == "alice@home.test" and first["deleted"] is False


def test_export_csv_and_since(world: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    r = runner.invoke(app, ["export", "-c", str(world), "-f", "csv", "--out", str(out)])
    assert r.exit_code == 0 and "2 items" in r.stdout
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 2 and tuple(rows[0]) == FIELDS
    r = runner.invoke(app, ["export", "-c", str(world), "--since", "2027-01-01"])
    assert json.loads(r.stdout) == []


def test_usage_errors_exit_2(world: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["export", "-c", str(world), "-f", "xml"]).exit_code == 2
    assert runner.invoke(app, ["export", "-c", str(world), "--since", "last week"]).exit_code == 2
    r = runner.invoke(app, ["stats", "-c", str(tmp_path / "nope.toml")])
    assert r.exit_code == 2 and "does not exist" in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text('language = "de"\n')
    r = runner.invoke(app, ["config", "check", "-c", str(bad)])
    assert r.exit_code == 2 and "language" in r.output


def test_run_without_credentials_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NUMPOLVILLE_MASTODON_TOKEN", raising=False)
    conf = tmp_path / "c.toml"
    conf.write_text('[mastodon]\nenabled = true\napi_base_url = "http://127.0.0.1:9"\n')
    r = runner.invoke(app, ["run", "-c", str(conf)])
    assert r.exit_code == 2 and "NUMPOLVILLE_MASTODON_TOKEN" in r.output
    assert "Traceback" not in r.output


def test_config_check_masks_secrets(world: Path) -> None:
    r = runner.invoke(app, ["config", "check", "-c", str(world)], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    assert "SECRET-TOK" not in r.output and "*** (set)" in r.output and "#numpolville" in r.output


def test_stats_table(world: Path) -> None:
    r = runner.invoke(app, ["stats", "-c", str(world)], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "contexte" in r.output and "prompted" in r.output


def test_classify_by_hand(world: Path) -> None:
    r = runner.invoke(app, ["classify", "https://home.test/u2", "initiative", "-c", str(world)])
    assert r.exit_code == 0, r.output
    items = json.loads(runner.invoke(app, ["export", "-c", str(world)]).stdout)
    assert items[1]["category"] == "initiative"
    assert runner.invoke(app, ["classify", "u2", "nope", "-c", str(world)]).exit_code == 2
    assert runner.invoke(app, ["classify", "zzz", "projet", "-c", str(world)]).exit_code == 1


def test_forget(world: Path) -> None:
    r = runner.invoke(app, ["forget", "alice@home.test", "--yes", "-c", str(world)])
    assert r.exit_code == 0 and "Erased 2" in r.output
    assert json.loads(runner.invoke(app, ["export", "-c", str(world)]).stdout) == []


def test_help_does_not_import_the_network_sdks() -> None:
    code = ("import sys; from typer.testing import CliRunner; from bot.cli import app; "
            "CliRunner().invoke(app, ['--help']); "
            "print(sorted(m for m in ('atproto', 'mastodon') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_python_dash_m_bot() -> None:
    out = subprocess.run([sys.executable, "-m", "bot", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "export" in out.stdout


def test_digest_command(world: Path, tmp_path: Path) -> None:
    out = tmp_path / "d.html"
    r = runner.invoke(app, ["digest", "-c", str(world), "--since", "2026-11-16", "--until", "2026-11-29",
                            "--format", "html", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "Contexte" in out.read_text() and "https://home.test/u1" in out.read_text()
    r = runner.invoke(app, ["digest", "-c", str(world), "--since", "2026-11-16", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)
    assert runner.invoke(app, ["digest", "-c", str(world), "--format", "pdf"]).exit_code == 2
    assert runner.invoke(app, ["digest", "-c", str(world), "--since", "hier"]).exit_code == 2


def test_csv_cells_that_would_be_formulas_become_text() -> None:
    from bot.export import as_text_cell

    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert as_text_cell(text) == "'" + text
    assert as_text_cell("Un lien =1") == "Un lien =1" and as_text_cell(True) is True
    assert as_text_cell(None) is None
