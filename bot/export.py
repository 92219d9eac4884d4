"""`numpolville export`: every item as JSON or CSV, with a stable, documented set of fields."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, TextIO

from bot.store import Store

FIELDS = ("network", "uri", "url", "author", "text", "category", "state", "boosted", "deleted",
          "created_at", "classified_at", "boost_note", "same_as")
FORMATS = ("json", "csv")
# A cell starting with one of these is a formula to a spreadsheet program (`=HYPERLINK(...)`,
# `@SUM`, `+1`, a tab or CR before one): OWASP's advice is to make it text with a leading "'".
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def rows(store: Store, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    for item in store.items(since=since):
        yield {
            "network": item["network"], "uri": item["uri"], "url": item["url"],
            "author": item["author_handle"], "text": item["text"], "category": item["category"],
            "state": item["state"], "boosted": item["boosted_at"] is not None,
            "deleted": bool(item["deleted"]), "created_at": item["created_at"],
            "classified_at": item["classified_at"], "boost_note": item["boost_note"],
            "same_as": item["same_as"],
        }


def write(items: Iterable[dict[str, Any]], fmt: str, out: TextIO) -> int:
    """Write the rows; return how many. JSON is one array, streamed, so memory stays flat."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        for row in items:
            writer.writerow({k: as_text_cell(v) for k, v in row.items()})
            count += 1
        return count
    out.write("[")
    for count, row in enumerate(items, 1):
        out.write(("," if count > 1 else "") + "\n  " + json.dumps(row, ensure_ascii=False))
    out.write("\n]\n" if count else "]\n")
    return count


def as_text_cell(value: Any) -> Any:
    """A CSV cell that spreadsheet programs show as text, never evaluate (JSON is left as is)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
