"""The in-process benchmarks on a tiny slice of the recorded corpus: the bot's paths (firehose,
Jetstream) and the SDK's reference loop produce the same events. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import ingest as bi
from bench.__main__ import load_corpus
from bench.record import read_frames, write_frames

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def corpus() -> tuple[list[bytes], list[bytes], str]:
    return load_corpus()


def test_corpus_has_the_mix(corpus: tuple[list[bytes], list[bytes], str]) -> None:
    frames, lines, _ = corpus
    meta = json.loads((ROOT / "bench/corpus/meta.json").read_text())
    assert len(frames) == meta["frames"] > 1000 and len(lines) == meta["jetstream_lines"]
    for what in ("tagged_facet", "tagged_text", "tagged_tags", "reply_to_bot", "delete_tagged", "like"):
        assert meta["counts"][what] > 0, what


def test_bot_and_sdk_paths_give_the_same_events(corpus: tuple[list[bytes], list[bytes], str]) -> None:
    frames, lines, bot = corpus
    results = {}
    for name, path, messages in (("bot", bi.bot_path("firehose", bot), frames),
                                 ("sdk", bi.sdk_path(bot), frames),
                                 ("jetstream", bi.bot_path("jetstream", bot), lines)):
        path.run(messages)
        results[name] = path.events
    assert results["bot"] == results["sdk"] == results["jetstream"]
    kinds = {type(e).__name__ for e in results["bot"]}
    assert kinds == {"PostSeen", "PostDeleted"}
    # a second pass: the same frames again give the same events (deletes of tracked posts too)
    again = bi.bot_path("firehose", bot)
    again.run(bi.loop(frames, 2 * len(frames)))
    assert again.events[:len(results["bot"])] == results["bot"]


def test_bench_ingest_command(tmp_path: Path, corpus: tuple[list[bytes], list[bytes], str]) -> None:
    frames, _, bot = corpus
    small = tmp_path / "f.bin"
    write_frames(small, frames[:500])
    assert read_frames(small) == frames[:500]
    out = subprocess.run([sys.executable, "-m", "bot", "bench-ingest", "--firehose", str(small),
                          "--bot-did", bot, "--total", "2000"], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert "firehose: 2000 messages" in out
