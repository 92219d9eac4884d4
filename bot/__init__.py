"""numpolville-bot: curates a hashtag across Mastodon and Bluesky."""

__version__ = "0.1.0"
