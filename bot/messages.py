"""What the bot says: the text of a prompt or a reply, the same on every network."""

from __future__ import annotations

from bot.config import Config
from bot.model import Prompt, Reply


def category_lines(config: Config) -> str:
    """One line per category, with its keycap number: "2️⃣ Contexte"."""
    return "\n".join(f"{c.number}\ufe0f\u20e3 {c.title(config.language)}"
                     for c in sorted(config.categories, key=lambda c: c.number))


def message(config: Config, action: Prompt | Reply) -> str:
    """The configured text for the action, placeholders filled (the mention is the adapter's)."""
    key = action.text_key if isinstance(action, Reply) else "prompt"
    category = config.category(action.category or "") if isinstance(action, Reply) else None
    return config.text(key, categories=category_lines(config), author=action.post.author.handle,
                       category=category.title(config.language) if category else "")
