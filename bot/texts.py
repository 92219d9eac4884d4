"""Default user-facing texts, French first. Placeholders: {author} {hashtag} {categories}
{category}. The prompt must stay under Bluesky's 300 graphemes with four categories.

The bot's replies name the hashtag without "#": a tagged reply would land in the very timeline the
bot curates, once per prompt."""

TEXT_KEYS = ("prompt", "thanks", "not_understood", "opt_out", "help", "feed_name", "feed_all",
             "feed_description", "feed_all_description")

DEFAULT_TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "prompt": (
            "Merci pour ce partage ! Dans quelle catégorie de la veille {hashtag} le ranger ?\n"
            "{categories}\n"
            "Répondez par le numéro ou le mot. « stop » : je ne vous solliciterai plus."
        ),
        "thanks": "Merci ! Classé dans « {category} ».",
        "not_understood": "Je n'ai pas compris. Répondez par un numéro :\n{categories}",
        "opt_out": "C'est noté : je ne vous solliciterai plus. Bonne continuation !",
        "help": (
            "Je range les partages {hashtag} pour la veille hebdomadaire. "
            "Répondez par un numéro :\n{categories}\n« stop » pour ne plus être sollicité·e."
        ),
        # Bluesky custom feeds: names of at most 24 graphemes ({category} is a label, or feed_all)
        "feed_name": "{hashtag} · {category}",
        "feed_all": "Tout",
        "feed_description": (
            "Les publications #{hashtag} que leurs auteurs ont rangées dans « {category} », "
            "les plus récentes d'abord. Classées par les personnes, pas par un algorithme."
        ),
        "feed_all_description": (
            "Toutes les publications #{hashtag} classées ({categories}), les plus récentes d'abord. "
            "Classées par les personnes, pas par un algorithme."
        ),
    },
    "en": {
        "prompt": (
            "Thanks for sharing! Which category of the {hashtag} digest fits best?\n"
            "{categories}\n"
            "Reply with the number or the word. \"stop\": I won't ask you again."
        ),
        "thanks": "Thanks! Filed under \"{category}\".",
        "not_understood": "Sorry, I did not understand. Reply with a number:\n{categories}",
        "opt_out": "Noted: I won't ask you again. All the best!",
        "help": (
            "I file {hashtag} posts for the weekly digest. Reply with a number:\n"
            "{categories}\n\"stop\" and I won't ask you again."
        ),
        "feed_name": "{hashtag} · {category}",
        "feed_all": "All",
        "feed_description": (
            "#{hashtag} posts their authors filed under \"{category}\", newest first. "
            "Sorted by people, not by an algorithm."
        ),
        "feed_all_description": (
            "Every classified #{hashtag} post ({categories}), newest first. "
            "Sorted by people, not by an algorithm."
        ),
    },
}
