"""Logging: a rich console by default, JSON lines with `--log-format json`, secrets always masked.

Masking happens in a filter on the handler, after formatting of the message, so no code path (an
SDK's exception text, a URL with a token) can leak a secret that the config knows about.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import datetime, timezone

MASK = "***"
# Bearer tokens and app passwords that the config does not know about still look like this.
_PATTERNS = re.compile(r"(?i)(bearer\s+|access_token=|password[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,]+)")


class SecretFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return _PATTERNS.sub(lambda m: m.group(1) + MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        record.msg, record.args = self.mask(message), None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if hasattr(record, "action"):
            entry["action"] = record.action
        return json.dumps(entry, ensure_ascii=False)


def setup(fmt: str = "rich", level: int = logging.INFO, secrets: Iterable[str] = ()) -> None:
    """Configure the root logger once for the process."""
    if fmt == "json":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    else:
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
    handler.addFilter(SecretFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "websockets", "urllib3", "atproto_client", "atproto_firehose"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
