"""Item 4: post -> prompt visible on the server. Not written yet: reported as missing."""

from __future__ import annotations

from typing import Any


def run() -> dict[str, Any]:
    raise NotImplementedError("latency measurement not implemented yet (see the issue)")
