"""A fixed store for the digest tests (imported by the other test_digest* modules).

Week 2025-W13 (Monday 24 to Sunday 30 March 2025, Europe/Paris) contains the switch to summer
time (Sunday 30 March, 02:00 -> 03:00), so the fixture also pins the week's edges.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from bot import model as m
from bot.config import Config
from bot.store import Store

NOW = datetime(2025, 3, 31, 7, 0, tzinfo=timezone.utc)  # Monday 31 March, 09:00 in Paris


def clock() -> datetime:
    return NOW


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def add(store: Store, n: int | str, network: str, handle: str, text: str, at: datetime, *,
        state: str = "classified", category: str | None = None, link: str | None = None,
        title: str | None = None, bio: str = "", labels: tuple[str, ...] = (),
        visibility: str = "public") -> m.Post:
    author = m.Author(network, f"id:{handle}", handle, bio=bio, labels=labels)  # type: ignore[arg-type]
    host = "piaille.example" if network == "mastodon" else "bsky.example"
    post = m.Post(network, f"{network}://post/{n}", f"ref-{n}", f"https://{host}/@{handle}/{n}",  # type: ignore[arg-type]
                  author, text, at, visibility=visibility, link=link, link_title=title)  # type: ignore[arg-type]
    store.apply(m.PostSeen(post), [m.Record(post, state, category=category,  # type: ignore[arg-type]
                                            classified_by=handle if category else None)])
    return post


def build_store(path: Path) -> Store:
    s = Store(path, clock=clock)
    # ---- the digested week, 2025-W13 ----
    add(s, 1, "mastodon", "alice@piaille.example", "Le bilan de la médiation numérique à Blois, à lire !",
        utc(2025, 3, 24, 9, 15), category="projet",
        link="https://www.example.org/mediation?utm_source=mastodon&utm_medium=social",
        title="Médiation numérique à Blois : le bilan d'une année")
    add(s, 2, "bluesky", "bob.bsky.social", "Très bon retour d'expérience #numpolville",
        utc(2025, 3, 25, 14, 0), category="projet", link="https://WWW.example.org/mediation/#resume")
    add(s, 3, "mastodon", "claire@mastodon.example", "Les chiffres de la fracture numérique dans les QPV",
        utc(2025, 3, 26, 8, 30), category="contexte", link="https://insee.example/fracture-numerique",
        title="La fracture numérique dans les quartiers prioritaires")
    add(s, 4, "bluesky", "dan.example.com", "Inscriptions ouvertes pour la rencontre régionale",
        utc(2025, 3, 27, 16, 45), category="initiative", link="https://crdsu.example/rencontre-blois",
        title="Rencontre régionale « e-inclusion et contrats de ville »")
    add(s, 5, "bluesky", "eve.bsky.social",
        "Et si les conseils citoyens se réunissaient aussi en ligne ? Quelques pistes pour 2030, "
        "entre tiers-lieux et plateformes publiques #numpolville", utc(2025, 3, 28, 11, 0),
        category="prospective")
    add(s, 6, "mastodon", "fred@piaille.example", "Un article à classer #numpolville",
        utc(2025, 3, 28, 18, 0), state="prompted", link="https://framablog.example/degooglisons-quartiers",
        title="Dégooglisons les quartiers")
    add(s, 7, "mastodon", "claire@mastodon.example", "Même lien, partagé aussi côté Mastodon",
        utc(2025, 3, 29, 9, 0), category="projet", link="http://www.example.org/mediation")
    # Sunday 30 March 23:30 in Paris (summer time, UTC+2) is still in the week...
    add(s, 8, "bluesky", "gil.bsky.social", "Observatoire des usages numériques : édition 2025",
        utc(2025, 3, 30, 21, 30), category="contexte", link="https://observatoire.example/2025",
        title="Observatoire des usages numériques 2025")
    # ...Monday 31 March 00:30 in Paris is the next week.
    add(s, 9, "bluesky", "gil.bsky.social", "Trop tard pour cette semaine",
        utc(2025, 3, 30, 22, 30), category="contexte", link="https://late.example/")
    # ---- left out ----
    add(s, 20, "mastodon", "hal@piaille.example", "Retiré", utc(2025, 3, 25, 10, 0), state="withdrawn",
        link="https://withdrawn.example/")
    add(s, 21, "mastodon", "hal@piaille.example", "Ignoré", utc(2025, 3, 25, 11, 0), state="skipped",
        link="https://skipped.example/")
    p = add(s, 22, "bluesky", "ivy.bsky.social", "Supprimé", utc(2025, 3, 25, 12, 0), category="projet",
            link="https://deleted.example/")
    s.apply(m.PostDeleted(p.network, p.uri), [m.SetState(p.network, p.uri, "deleted", "deleted")])
    p = add(s, 23, "mastodon", "jo@piaille.example", "Ne plus me solliciter", utc(2025, 3, 26, 12, 0),
            category="projet", link="https://optedout.example/")
    s.apply(m.PostSeen(p), [m.OptOut(p.network, p.author.id, p.author.handle)])
    add(s, 24, "bluesky", "kim.bsky.social", "Compte non public", utc(2025, 3, 26, 13, 0),
        category="projet", link="https://unauthenticated.example/", labels=("!no-unauthenticated",))
    add(s, 25, "mastodon", "lou@piaille.example", "Pas d'indexation", utc(2025, 3, 26, 14, 0),
        category="projet", link="https://noindex.example/", bio="Chargée de mission. #NoIndex")
    add(s, 26, "mastodon", "max@piaille.example", "Message privé", utc(2025, 3, 26, 15, 0),
        category="projet", link="https://private.example/", visibility="private")
    # ---- earlier weeks, for "change since" and the chart ----
    add(s, 30, "mastodon", "alice@piaille.example", "Semaine 12, projet", utc(2025, 3, 18, 9, 0),
        category="projet", link="https://w12.example/projet", title="Un projet de la semaine 12")
    add(s, 31, "bluesky", "bob.bsky.social", "Semaine 12, contexte", utc(2025, 3, 19, 9, 0),
        category="contexte", link="https://w12.example/contexte", title="Un contexte de la semaine 12")
    add(s, 32, "bluesky", "bob.bsky.social", "Semaine 12, contexte 2", utc(2025, 3, 20, 9, 0),
        category="contexte", link="https://w12.example/contexte-2", title="Un autre contexte")
    add(s, 33, "mastodon", "claire@mastodon.example", "Semaine 12, à classer", utc(2025, 3, 21, 9, 0),
        state="expired", link="https://w12.example/a-classer", title="À classer en semaine 12")
    for i, (week_monday, cat) in enumerate([(3, "projet"), (3, "initiative"), (10, "projet"),
                                            (10, "prospective"), (10, "contexte"), (10, "projet"),
                                            (10, "initiative"), (3, "contexte")]):
        add(s, 40 + i, "mastodon", "nina@piaille.example", f"Archive {i}",
            utc(2025, 3, week_monday + 1, 9, 0), category=cat, link=f"https://archive.example/{i}",
            title=f"Archive {i}")
    add(s, 50, "bluesky", "olga.bsky.social", "Février", utc(2025, 2, 12, 9, 0), category="initiative",
        link="https://archive.example/feb", title="Février")
    return s


def config(**digest: str) -> Config:
    from bot.config import parse
    return parse({"digest": {"public_url": "https://veille.example/numpolville/", **digest}}, "(test)")
