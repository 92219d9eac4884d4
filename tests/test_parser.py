"""The reply parser: a table of real-looking answers, and fuzzing for what it must never do."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import DEFAULT_CATEGORIES, Category
from bot.parser import Answer, category_from_tags, parse_answer

P, C, N, F = "projet", "contexte", "initiative", "prospective"
ANSWERS = [
    # numbers, plain and decorated
    ("1", P), ("2", C), ("3", N), ("4", F), ("2.", C), ("2)", C), (" 3 ", N), ("n°2", C),
    ("N° 4", F), ("no 3", N), ("#2", C), ("1er", P), ("4e", F), ("2 !", C), ("(3)", N),
    ("1️⃣", P), ("2️⃣", C), ("3️⃣", N), ("4️⃣", F), ("2⃣", C), ("je dirais 2", C), ("2 merci", C),
    ("@numpolbot 2", C), ("@numpolbot@piaille.fr 3", N), ("@numpolbot.test 4 !", F),
    # words, any case, accents or not, with or without #
    ("projet", P), ("Projet", P), ("PROJET", P), ("#projet", P), ("#Projet", P), ("projets", P),
    ("contexte", C), ("Contexte !", C), ("contéxte", C), ("#contexte", C), ("context", C),
    ("initiative", N), ("Initiatives", N), ("#initiative", N), ("un rapport", N),
    ("prospective", F), ("#Prospective", F), ("Prospectives", F), ("foresight", F),
    ("c'est plutôt du contexte", C), ("c’est un projet", P), ("je pense que c'est une initiative", N),
    ("Plutôt prospective, merci !", F), ("ça relève du contexte à mon avis", C),
    ("this is a project", P), ("Context, I'd say", C),
    # number words
    ("deux", C), ("Deux", C), ("trois", N), ("quatre", F), ("two", C), ("three", N), ("four", F),
    ("la deuxième", C), ("troisième catégorie", N), ("first", P), ("un", P), ("one", P),
    # emoji aliases
    ("📌", P), ("📊", C), ("🔭", F),
    # a number and its matching word agree
    ("2 contexte", C), ("2 - contexte", C), ("4️⃣ prospective", F),
]
OTHER = [
    ("stop", "optout"), ("STOP", "optout"), ("Stop !", "optout"), ("non merci", "optout"),
    ("Non merci.", "optout"), ("no thanks", "optout"), ("unsubscribe", "optout"),
    ("aide", "help"), ("help", "help"), ("?", "help"), ("Aide ?", "help"),
    ("je ne sais pas", "unknown"), ("bof", "unknown"), ("", "unknown"), ("👍", "unknown"),
    ("1 ou 2", "unknown"), ("projet et contexte", "unknown"), ("les deux", "unknown"),
    ("both", "unknown"), ("5", "unknown"), ("2024", "unknown"), ("10", "unknown"),
    ("à 14h", "unknown"), ("merci !", "unknown"), ("https://example.org/2", "unknown"),
    ("c'est un contexte ou une initiative ?", "unknown"), ("aucun", "unknown"), ("3/4", "unknown"),
    ("2,5", "unknown"), ("version 2.0", "unknown"), ("50%", "unknown"),
]

# A category named under a negation or a doubt: never that category (#13).
NEGATED = [
    "pas projet", "Pas projet !", "pas un projet", "ce n'est pas un projet", "c'est pas du contexte",
    "non, pas contexte", "non contexte", "surtout pas 2", "pas 2", "pas le 3", "pas #projet",
    "tout sauf projet", "sauf 4", "ni projet ni contexte", "ni 1 ni 2", "ni prospective",
    "jamais de la prospective", "sans rapport", "hormis l'initiative", "excepté le contexte",
    "not a project", "not 2", "not context", "isn't a project", "it's not foresight",
    "neither project nor context", "never 3", "anything except context", "nope, not 1",
    "peut-être projet", "peut etre 2", "p'tet contexte", "maybe 2", "perhaps context",
    "probablement une initiative", "probably foresight", "j'hésite : projet", "unsure, 4",
    "projet ?", "2 ?", "contexte, je sais pas", "could be a project", "dunno, 3 maybe",
    "pas vraiment un projet", "2️⃣ ? pas sûr",
]
NEGATION_WORDS = ["pas", "non", "ni", "sauf", "sans", "not", "never", "except", "peut-être", "maybe",
                  "perhaps", "n'est pas", "isn't", "?"]


@pytest.mark.parametrize("text", NEGATED)
def test_a_negated_or_hedged_category_is_unknown(text: str) -> None:
    assert parse_answer(text, DEFAULT_CATEGORIES) == Answer("unknown")


def test_negation_table_is_large() -> None:
    assert len(NEGATED) >= 30


@pytest.mark.parametrize("text,kind", [("pas de projet, stop", "optout"), ("non merci", "optout"),
                                       ("aide ?", "help"), ("contexte, merci", "category")])
def test_negation_leaves_opt_out_help_and_plain_answers(text: str, kind: str) -> None:
    assert parse_answer(text, DEFAULT_CATEGORIES).kind == kind


@pytest.mark.parametrize("text,category", ANSWERS)
def test_reads_a_category(text: str, category: str) -> None:
    assert parse_answer(text, DEFAULT_CATEGORIES) == Answer("category", category)


@pytest.mark.parametrize("text,kind", OTHER)
def test_reads_other_answers(text: str, kind: str) -> None:
    assert parse_answer(text, DEFAULT_CATEGORIES).kind == kind


def test_table_is_large() -> None:
    assert len(ANSWERS) + len(OTHER) >= 60


def test_configured_categories_and_aliases() -> None:
    cats = (Category("outil", 1, {"fr": "Outil"}, ("#tool", "🛠️")), Category("debat", 2, {"fr": "Débat"}))
    assert parse_answer("🛠️", cats).category == "outil"
    assert parse_answer("#tool", cats).category == "outil"
    assert parse_answer("Débat", cats).category == "debat"
    assert parse_answer("3", cats).kind == "unknown"  # no third category
    assert parse_answer("projet", cats).kind == "unknown"  # not a configured word


@pytest.mark.parametrize("tags,text,expected", [
    (["numpolville", "projet"], "", P),
    (["NumPolVille", "Contexte"], "", C),
    ([], "Super #numpolville #initiative", N),
    ([], "Un projet inspirant #numpolville", None),  # a plain word in the post is not a choice
    (["numpolville", "projet", "contexte"], "", None),  # two category tags: ask
    (["numpolville"], "", None),
])
def test_category_hashtag_in_the_post(tags: list[str], text: str, expected: str | None) -> None:
    assert category_from_tags(tags, text, DEFAULT_CATEGORIES) == expected


CATEGORY_WORDS = {"projet", "project", "contexte", "context", "initiative", "rapport", "report",
                  "prospective", "foresight", "futur", "future", "deux", "trois", "quatre", "two",
                  "three", "four", "first", "second", "third", "fourth", "premier", "premiere",
                  "seconde", "deuxieme", "troisieme", "quatrieme", "un", "une", "one"}


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_never_raises(text: str) -> None:
    assert parse_answer(text, DEFAULT_CATEGORIES).kind in ("category", "optout", "help", "unknown")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(categories=["L", "P", "Zs", "So"]), max_size=12),
                max_size=8))
def test_no_category_without_a_category_word(words: list[str]) -> None:
    """Text without digits, keycaps or category words never yields a category."""
    from bot.parser import fold

    text = " ".join(words)
    folded = fold(text)
    tokens = set(folded.replace("#", " ").split())
    has_word = any(w in tokens or w + "s" in tokens for w in CATEGORY_WORDS)
    has_emoji = any(e in folded for e in ("📌", "📊", "📣", "🔭"))
    answer = parse_answer(text, DEFAULT_CATEGORIES)
    if not has_word and not has_emoji:
        assert answer.kind != "category", (text, answer)


ANSWER_TEXTS = [text for text, _ in ANSWERS]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(NEGATION_WORDS), st.sampled_from(ANSWER_TEXTS),
       st.text(alphabet=st.characters(categories=["L", "Zs"]), max_size=20), st.booleans())
def test_a_negation_never_yields_a_category(negation: str, answer: str, filler: str,
                                            before: bool) -> None:
    """Any answer that reads as a category, with a negation or hedge put before it (or after,
    with words between), is never read as a category."""
    text = f"{negation} {filler} {answer}" if before else f"{answer} {filler} {negation}"
    assert parse_answer(text, DEFAULT_CATEGORIES).kind != "category", text
