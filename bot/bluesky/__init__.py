"""Bluesky: listen for the tag on Jetstream, a firehose or search, and act with records in the
bot's repository. `bot.runtime.build_adapters` imports `BlueskyAdapter` from here."""

from bot.bluesky.adapter import BlueskyAdapter

__all__ = ["BlueskyAdapter"]
