"""`numpolville browse`: the database in Datasette, with every table and column explained and a
few canned queries, for people who would rather click than write SQL.

Datasette is an optional extra. Its metadata names databases after the file, so the packaged
metadata (`datasette-metadata.yml`) is filed under the actual file's stem at launch. The database
is served in normal (not immutable) mode: the bot keeps writing while people browse.
"""

from __future__ import annotations

import importlib.util
import json
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
        try:
            return subprocess.call(command(database, meta, host, port, open_browser))
        except KeyboardInterrupt:  # Datasette got the same Ctrl-C and stops too
            return 0
