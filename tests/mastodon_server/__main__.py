"""`python -m tests.mastodon_server --port N --seed demo`: standalone sandbox server.

Why: `make demo` runs the bot against a server in another process; the base
URL and the seeded tokens are printed as JSON (stdout or --state-file).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading

from .server import MastodonServer


def seed_demo(server: MastodonServer) -> None:
    server.create_account("bot", note="I curate #numpolville. Reply to my prompts!", bot=True)
    for name in ("alice", "bob", "carol"):
        server.create_account(name, note=f"{name} lives in Numpolville")
    server.follow("alice", "bot")
    server.post("alice", "Good morning #numpolville! https://example.org/sunrise")
    server.post("bob", "Market day in #Numpolville today")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--domain", default=None)
    ap.add_argument("--seed", choices=["none", "demo"], default="none")
    ap.add_argument("--max-characters", type=int, default=500)
    ap.add_argument("--rate-limit", type=int, default=300)
    ap.add_argument("--state-file", default=None)
    args = ap.parse_args(argv)
    server = MastodonServer(
        port=args.port, domain=args.domain, max_characters=args.max_characters, rate_limit=args.rate_limit
    ).start()
    if args.seed == "demo":
        seed_demo(server)
    info = json.dumps(server.state_summary(), indent=2)
    if args.state_file:
        with open(args.state_file, "w", encoding="utf-8") as fh:
            fh.write(info + "\n")
    print(info, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop()


if __name__ == "__main__":
    main()
