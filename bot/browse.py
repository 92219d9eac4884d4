"""`numpolville browse`: the database in Datasette, with every table and column explained and a
few canned queries, for people who would rather click than write SQL.

Datasette is an optional extra. Its metadata names databases after the file, so the packaged
metadata (`datasette-metadata.yml`) is filed under the actual file's stem at launch. The database
is served in normal (not immutable) mode: the bot keeps writing while people browse.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

METADATA = "datasette-metadata.yml"
INSTALL = "pip install 'numpolville-bot[browse]'"


class BrowseError(RuntimeError):
    """Datasette missing, or no database yet: says what to do."""


def metadata(database: Path) -> dict[str, Any]:
    """The packaged metadata, its database block filed under this database's name."""
    import yaml  # a Datasette dependency

    data = yaml.safe_load(resources.files("bot").joinpath(METADATA).read_text(encoding="utf-8"))
    data["databases"] = {database.stem: next(iter(data["databases"].values()))}
    return data


def command(database: Path, metadata_file: Path, host: str, port: int, open_browser: bool) -> list[str]:
    return [sys.executable, "-m", "datasette", "serve", str(database), "--metadata", str(metadata_file),
            "-h", host, "-p", str(port), *(["--open"] if open_browser else [])]


def serve(database: Path, host: str = "127.0.0.1", port: int = 8001, open_browser: bool = True) -> int:
    """Run Datasette until it stops (Ctrl-C); returns its exit code."""
    if importlib.util.find_spec("datasette") is None:
        raise BrowseError(f"Datasette is not installed: {INSTALL}")
    if not database.exists():
        raise BrowseError(f"no database at {database} yet: `numpolville run` creates it")
    with tempfile.TemporaryDirectory(prefix="numpolville-browse-") as tmp:
        meta = Path(tmp) / "metadata.json"
        meta.write_text(json.dumps(metadata(database)), encoding="utf-8")
        with subprocess.Popen(command(database, meta, host, port, open_browser)) as child:
            previous = signal.signal(signal.SIGTERM, _stop)
            try:
                return child.wait()
            except KeyboardInterrupt:  # Datasette got the same Ctrl-C and stops too
                return 0
            finally:
                signal.signal(signal.SIGTERM, previous)
                if child.poll() is None:  # we were told to stop: Datasette must not outlive us
                    child.terminate()
                    child.wait(10)


def _stop(signum: int, _frame: Any) -> None:
    """SIGTERM (kill, systemd, a test) unwinds `serve`, which stops Datasette on the way out."""
    raise SystemExit(128 + signum)
