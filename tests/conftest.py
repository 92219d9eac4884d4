"""Shared fixtures: the local Mastodon-API server and the reference Bluesky network.

Both are real servers on 127.0.0.1; the Bluesky network starts once per session (~7 s)."""

pytest_plugins = ["tests.mastodon_server.pytest_plugin", "tests.bsky_network", "tests.web_server"]
