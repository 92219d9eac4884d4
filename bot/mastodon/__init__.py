"""The Mastodon side of the bot (Mastodon and compatible servers), through Mastodon.py."""

from bot.mastodon.adapter import MastodonAdapter

__all__ = ["MastodonAdapter"]
