"""Reads a person's answer to the bot's prompt, and category hashtags in a post.

People answer in many ways: "2", "n°2", "2️⃣", "#contexte", "c'est plutôt du contexte", "deux".
The parser folds case, accents and keycaps, then looks for every category signal in the text. One
category found: that is the answer. None or several: "unknown", never a guess. A negation or a
hedge anywhere in the answer ("pas projet", "tout sauf 2", "ni 1 ni 2", "not context", "peut-être
contexte ?") makes it unknown too: such a person is not naming the category, or not sure of it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from bot.config import Category

Kind = Literal["category", "optout", "help", "unknown"]

NUMBER_WORDS = {
    1: ("premier", "premiere", "first"),
    2: ("deux", "deuxieme", "second", "seconde", "two"),
    3: ("trois", "troisieme", "three", "third"),
    4: ("quatre", "quatrieme", "four", "fourth"),
    5: ("cinq", "cinquieme", "five", "fifth"),
    6: ("six", "sixieme", "sixth"),
    7: ("sept", "septieme", "seven", "seventh"),
    8: ("huit", "huitieme", "eight", "eighth"),
    9: ("neuf", "neuvieme", "nine", "ninth"),
}
# "un"/"one" are articles far more often than answers: they count only as the whole answer.
WHOLE_ANSWER_WORDS = {"un": 1, "une": 1, "one": 1}
OPT_OUT = ("stop", "non merci", "no thanks", "no thank you", "unsubscribe", "desabonner",
           "ne plus me solliciter", "laisse moi tranquille", "leave me alone")
HELP = ("aide", "help")
# Answers that name several categories at once, or none on purpose.
AMBIGUOUS = ("les deux", "both", "tous", "toutes", "all of them", "aucun", "aucune", "none")
# Words that deny or doubt what follows ("no" is not one: "no 3" is "number 3"; "non merci" is an
# opt-out, read first). "n't" is read as " not" before the words are split.
NEGATIONS = frozenset({"pas", "non", "ni", "sauf", "sans", "hormis", "excepte", "jamais",
                       "not", "nor", "neither", "never", "except", "without", "nope"})
HEDGES = ("peut etre", "peutetre", "ptet", "p tet", "ptetre", "maybe", "perhaps", "possibly", "probablement",
          "probably", "hesite", "unsure", "dunno", "idk", "might be", "could be", "je sais pas")

_URL = re.compile(r"https?://\S+")
_MENTION = re.compile(r"(?<!\w)@[\w.\-]+(?:@[\w.\-]+)?")
_KEYCAP = re.compile(r"([0-9#*])\ufe0f?\u20e3")
_NUMBER = re.compile(r"(?<![\w.,/:])(?:n\s?°\s?|no\.?\s?|#)?([1-9])(?:\s?[.)]|er|e|eme)?(?![\w.,/:%])")
_WORD = re.compile(r"#?[\w]+")


@dataclass(frozen=True)
class Answer:
    kind: Kind
    category: str | None = None


UNKNOWN = Answer("unknown")


def fold(text: str) -> str:
    """Lowercase, strip accents, turn keycap emoji into plain digits, drop links and mentions."""
    text = _KEYCAP.sub(r" \1 ", text)
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.replace("’", "'").replace("\u00a0", " ")


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def _vocabulary(categories: Iterable[Category]) -> dict[str, str]:
    """Every folded word or emoji that names a category, mapped to its key."""
    vocab: dict[str, str] = {}
    for c in categories:
        for word in (c.key, *c.aliases, *c.label.values()):
            vocab[_singular(fold(word).lstrip("#").strip())] = c.key
    return vocab


def parse_answer(text: str, categories: Iterable[Category]) -> Answer:
    """What a reply to the prompt says: a category, an opt-out, a request for help, or unknown."""
    cats = tuple(categories)
    folded = fold(text)
    words = " ".join(_WORD.findall(folded.replace("n't", " not").replace("#", " #"))).replace("#", "")
    if any(_has_phrase(words, p) for p in OPT_OUT):
        return Answer("optout")
    found = _categories_in(folded, words, cats)
    if any(_has_phrase(words, p) for p in AMBIGUOUS) or found and _doubted(folded, words):
        return UNKNOWN
    if len(found) == 1 and not (key := found.pop()).startswith("?"):
        return Answer("category", key)
    if not found and (folded.strip() == "?" or any(_has_phrase(words, h) for h in HELP)):
        return Answer("help")
    return UNKNOWN


def _doubted(folded: str, words: str) -> bool:
    """A negation, a hedge or a question mark: the category named is denied or in doubt."""
    return ("?" in folded or not NEGATIONS.isdisjoint(words.split())
            or any(_has_phrase(words, h) for h in HEDGES))


def _has_phrase(words: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", words) is not None


def _categories_in(folded: str, words: str, cats: tuple[Category, ...]) -> set[str]:
    by_number = {c.number: c.key for c in cats}
    vocab = _vocabulary(cats)
    found: set[str] = set()
    for m in _NUMBER.finditer(folded):
        n = int(m.group(1))
        if n in by_number:
            found.add(by_number[n])
        else:
            found.add(f"?{n}")  # a number that names no category makes the answer ambiguous
    tokens = words.split()
    for token in tokens:
        key = vocab.get(_singular(token))
        if key:
            found.add(key)
        for n, names in NUMBER_WORDS.items():
            if token in names and n in by_number:
                found.add(by_number[n])
    for emoji, key in vocab.items():
        if emoji and not emoji[0].isalnum() and emoji in folded:
            found.add(key)
    if len(tokens) == 1 and WHOLE_ANSWER_WORDS.get(tokens[0]) in by_number:
        found.add(by_number[WHOLE_ANSWER_WORDS[tokens[0]]])
    return found


def category_from_tags(tags: Iterable[str], text: str, categories: Iterable[Category]) -> str | None:
    """A category named by a hashtag in the post itself (`#numpolville #projet`), if exactly one."""
    cats = tuple(categories)
    vocab = _vocabulary(cats)
    hashtags = {fold(t).lstrip("#") for t in tags}
    hashtags |= {m.lstrip("#") for m in re.findall(r"#\w+", fold(text))}
    found = {vocab[_singular(h)] for h in hashtags if _singular(h) in vocab}
    return found.pop() if len(found) == 1 else None
