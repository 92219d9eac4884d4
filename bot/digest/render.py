"""Render a digest as Markdown, standalone HTML, RSS, Atom or JSON.

Markdown and HTML come from Jinja2 templates shipped in `bot/templates/` and overridable by files
of the same name in `config/templates/` (a ChoiceLoader looks there first). HTML autoescapes
everything; Markdown text goes through `md` (backslash-escapes every character that could make
a link, an autolink, raw HTML or emphasis). Feeds are built with feedgen, so the XML is always
well-formed and escaped; their HTML descriptions are passed through nh3 with http(s) links only.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import fields, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import nh3
from feedgen.feed import FeedGenerator
from markupsafe import Markup, escape

from bot.config import Config
from bot.digest.build import UNCLASSIFIED, Digest, Entry, safe_url
from bot.digest.period import Period

FORMATS = ("md", "html", "rss", "atom", "json")
PALETTE = ("#1f6f8b", "#e07b39", "#4c9a2a", "#8e5ea2", "#c44e52", "#b8860b", "#2f4b7c", "#a05195")
UNCLASSIFIED_COLOR = "#a3acb9"
NETWORK_NAMES = {"mastodon": "Mastodon", "bluesky": "Bluesky"}

MONTHS = {
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
           "octobre", "novembre", "décembre"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
}
WORDS: dict[str, dict[str, str]] = {
    "fr": {
        "week": "Semaine {week}", "from_to": "du {a} au {b}", "entries": "partages",
        "entry": "partage", "posts": "publications", "people": "contributeurs·rices",
        "change": "par rapport à la période précédente", "by": "Partagé par", "on": "sur",
        "networks": "Par réseau", "categories": "Par catégorie", "chart": "Partages par catégorie, "
        "{n} dernières périodes", "empty": "Rien dans cette catégorie cette fois-ci.",
        "nothing": "Aucun partage sur cette période.", "generated": "Généré le {date}",
        "intro": "La veille partagée avec #{hashtag} : projets, contexte, initiatives et regards "
        "prospectifs sur le numérique et la politique de la ville.",
        "join": "Pour contribuer : publiez avec #{hashtag} sur Mastodon ou Bluesky, puis répondez au "
        "robot pour choisir la catégorie.", "total": "Total", "period": "Période",
        "online": "Version en ligne", "see_post": "voir la publication",
        "more": "… et {n} autre(s) dans cette catégorie",
    },
    "en": {
        "week": "Week {week}", "from_to": "{a} to {b}", "entries": "shares", "entry": "share",
        "posts": "posts", "people": "contributors", "change": "compared with the previous period",
        "by": "Shared by", "on": "on", "networks": "By network", "categories": "By category",
        "chart": "Shares per category, last {n} periods", "empty": "Nothing in this category this time.",
        "nothing": "Nothing was shared in this period.", "generated": "Generated on {date}",
        "intro": "What was shared with #{hashtag}: projects, context, initiatives and foresight on "
        "digital issues and urban policy.",
        "join": "To contribute: post with #{hashtag} on Mastodon or Bluesky, then answer the bot to "
        "pick a category.", "total": "Total", "period": "Period", "online": "Online version",
        "see_post": "see the post", "more": "… and {n} more in this category",
    },
}


# ---- helpers shared by the templates ------------------------------------------------------------

def format_date(t: datetime, lang: str, *, year: bool = True) -> str:
    month = MONTHS[lang][t.month - 1]
    if lang == "fr":
        day = "1er" if t.day == 1 else str(t.day)
        return f"{day} {month} {t.year}" if year else f"{day} {month}"
    return f"{t.day} {month} {t.year}" if year else f"{t.day} {month}"


def period_dates(p: Period, lang: str) -> str:
    """The days a period covers as people read them: "du 23 au 29 novembre 2026"."""
    w = WORDS[lang]
    a, b = p.start.date(), p.last_day
    same_year = a.year == b.year
    first = format_date(p.start, lang, year=not same_year)
    if same_year and a.month == b.month:
        first = "1er" if (lang == "fr" and a.day == 1) else str(a.day)
    return w["from_to"].format(a=first, b=format_date(datetime.combine(b, p.start.timetz()), lang))


def period_label(p: Period, lang: str) -> str:
    """A period's heading: "Semaine 48 · du 23 au 29 novembre 2026" (a week), else the days."""
    span = period_dates(p, lang)
    if p.kind == "week":
        return f"{WORDS[lang]['week'].format(week=p.start.isocalendar()[1])} · {span}"
    return span[0].upper() + span[1:]


def short_label(p: Period, lang: str) -> str:
    """Under a chart bar: "S03" / "W03" for a week, else the first day "13/01"."""
    if p.kind == "week":
        return ("S" if lang == "fr" else "W") + f"{p.start.isocalendar()[1]:02d}"
    return p.start.strftime("%d/%m")


def signed(n: int) -> str:
    return f"+{n}" if n > 0 else ("±0" if n == 0 else f"−{-n}")


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def md_escape(value: Any) -> str:
    """Untrusted text inside Markdown (never at a line start): backslash-escape what CommonMark or
    GFM could read as syntax mid-line: links and images ([ ]), autolinks and raw HTML (< >), code,
    emphasis, strike-through and table cells. Whitespace is collapsed, so no line starts with it."""
    text = re.sub(r"\s+", " ", str(value or "")).strip()
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_url(value: str | None) -> str:
    """A link target for `[text](<url>)`: http(s) only, with nothing that could end the target."""
    url = safe_url(value)
    return (url or "").replace("<", "%3C").replace(">", "%3E").replace(" ", "%20")


def color_for(key: str, order: list[str]) -> str:
    if key == UNCLASSIFIED:
        return UNCLASSIFIED_COLOR
    return PALETTE[order.index(key) % len(PALETTE)] if key in order else PALETTE[-1]


def chart(digest: Digest) -> dict[str, Any]:
    """Geometry of the stacked bar chart (one bar per period, one segment per category), computed
    here so that a template only draws rectangles."""
    keys = [k for k in digest.labels if k != UNCLASSIFIED]
    if any(p.counts.get(UNCLASSIFIED) for p in digest.series):
        keys.append(UNCLASSIFIED)
    width, height, left, top, bottom = 680, 260, 36, 24, 34
    plot_h = height - top - bottom
    n = len(digest.series)
    slot = (width - left - 8) / max(n, 1)
    bar_w = round(slot * 0.62, 1)
    peak = max([p.total for p in digest.series] + [1])
    step = _nice_step(peak)
    top_value = step * -(-peak // step)
    scale = plot_h / top_value
    bars = []
    for i, point in enumerate(digest.series):
        x = round(left + i * slot + (slot - bar_w) / 2, 1)
        y = float(top + plot_h)
        segments = []
        for k in keys:
            count = point.counts.get(k, 0)
            if not count:
                continue
            h = round(count * scale, 1)
            y = round(y - h, 1)
            segments.append({"key": k, "label": digest.labels[k], "count": count, "x": x, "y": y,
                             "w": bar_w, "h": h, "color": color_for(k, keys)})
        bars.append({"x": x, "w": bar_w, "cx": round(x + bar_w / 2, 1), "total": point.total,
                     "top": y, "label": short_label(point.period, digest.language),
                     "period": period_label(point.period, digest.language),
                     "current": point.period == digest.period, "segments": segments})
    ticks = [{"value": v, "y": round(top + plot_h - v * scale, 1)} for v in range(0, top_value + 1, step)]
    legend = [{"key": k, "label": digest.labels[k], "color": color_for(k, keys)} for k in keys]
    return {"width": width, "height": height, "left": left, "right": width - 8, "base": top + plot_h,
            "bars": bars, "ticks": ticks, "legend": legend}


def _nice_step(peak: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if peak / step <= 5:
            return step
    return 10 ** len(str(peak))


# ---- templates ------------------------------------------------------------------------------------

def template_dirs(config: Config, templates_dir: Path | None = None) -> list[Path]:
    """Where overriding templates may be: an explicit folder, else `templates/` beside the
    configuration file, else `config/templates/` in the working directory."""
    if templates_dir is not None:
        return [templates_dir]
    dirs = []
    source = Path(config.source)
    if config.source and not config.source.startswith("(") and source.suffix:
        dirs.append(source.parent / "templates")
    dirs.append(Path("config/templates"))
    return list(dict.fromkeys(dirs))


def environment(config: Config, templates_dir: Path | None = None) -> jinja2.Environment:
    """One Environment (and so one compiled template) per set of template folders; it is made
    again when an overriding template appears, disappears or changes."""
    dirs = [Path(os.path.abspath(d)) for d in template_dirs(config, templates_dir)]
    overrides = []
    for d in dirs:
        for name in TEMPLATES:
            try:
                overrides.append((str(d / name), (d / name).stat().st_mtime_ns))
            except OSError:
                pass
    key = (tuple(map(str, dirs)), tuple(overrides))
    env = _ENVIRONMENTS.get(key)
    if env is None:
        if len(_ENVIRONMENTS) > 16:
            _ENVIRONMENTS.clear()
        env = _ENVIRONMENTS[key] = _environment(dirs)
    return env


TEMPLATES = ("digest.md.j2", "digest.html.j2", "digest_body.html.j2")
_ENVIRONMENTS: dict[Any, jinja2.Environment] = {}


def _environment(dirs: list[Path]) -> jinja2.Environment:
    loader = jinja2.ChoiceLoader([
        *(jinja2.FileSystemLoader(str(d)) for d in dirs),
        jinja2.PackageLoader("bot", "templates"),
    ])
    env = jinja2.Environment(
        loader=loader, autoescape=jinja2.select_autoescape(("html", "html.j2", "htm", "xml")),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined)
    env.filters.update(md=md_escape, md_url=md_url, url=lambda u: safe_url(u) or "", signed=signed,
                       date=lambda t, lang: format_date(t, lang))
    return env


def context(digest: Digest, config: Config) -> dict[str, Any]:
    lang = digest.language
    w = {k: v.replace("{hashtag}", digest.hashtag) for k, v in WORDS[lang].items()}
    order = [c.key for c in config.categories]
    return {
        "d": digest, "w": w, "lang": lang,
        "period_label": period_label(digest.period, lang),
        "previous_label": period_label(digest.previous_period, lang),
        "period_dates": period_dates(digest.period, lang),
        "previous_dates": period_dates(digest.previous_period, lang),
        "chart": chart(digest), "networks": NETWORK_NAMES,
        "color": lambda k: color_for(k, order),
        "generated": w["generated"].format(date=format_date(digest.generated_at, lang)),
        "nchart": len(digest.series),
    }


def render(digest: Digest, config: Config, fmt: str, *, templates_dir: Path | None = None) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown digest format {fmt!r}: one of {', '.join(FORMATS)}")
    if fmt in ("md", "html"):
        env = environment(config, templates_dir)
        return env.get_template(f"digest.{fmt}.j2").render(context(digest, config))
    if fmt == "json":
        return render_json(digest)
    return render_feed(digest, fmt)


# ---- feeds ----------------------------------------------------------------------------------------

def entry_html(entry: Entry, language: str) -> str:
    """An entry's description for feed readers (which render it as HTML): built escaped, then
    cleaned by nh3 with http(s) links only, as a second line of defence."""
    w = WORDS[language]
    parts = []
    if entry.excerpt:
        parts.append(f"<p>{_esc(entry.excerpt)}</p>")
    people = []
    for s in entry.sharers:
        name = f"@{_esc(s.handle)}"
        net = _esc(NETWORK_NAMES[s.network])
        people.append(f'<a href="{_esc(s.url)}">{name}</a> ({net})' if s.url else f"{name} ({net})")
    parts.append(f"<p>{_esc(w['by'])} {', '.join(people)}</p>")
    return nh3.clean("".join(parts), tags={"p", "a"}, attributes={"a": {"href"}},
                     url_schemes={"http", "https"}, link_rel="noopener noreferrer nofollow")


def _esc(value: Any) -> str:
    return str(escape(value))


def render_feed(digest: Digest, fmt: str) -> str:
    """RSS or Atom: one item per listed entry of the classified sections (so at most
    `[digest] max_entries` per category), oldest first; "À classer" stays out."""
    lang = digest.language
    base = digest.public_url or f"https://{digest.hashtag}.invalid/digest"
    fg = FeedGenerator()
    fg.id(f"{base}#{digest.period.key}" if fmt == "atom" else base)
    fg.title(f"{digest.title} — {period_label(digest.period, lang)}")
    fg.subtitle(WORDS[lang]["intro"].replace("{hashtag}", digest.hashtag))
    fg.link(href=base, rel="alternate")
    fg.language(lang)
    fg.author(name=digest.title)
    fg.generator("numpolville-bot")
    fg.updated(digest.generated_at)
    fg.lastBuildDate(digest.generated_at)
    for entry in sorted(digest.classified, key=lambda e: (e.date, e.key)):
        fe = fg.add_entry(order="append")
        fe.id(entry.key if entry.link else (entry.url or entry.key))
        if fmt == "rss":
            fe.guid(entry.key if entry.link else (entry.url or entry.key), permalink=False)
        fe.title(entry.title)
        if entry.url:
            fe.link(href=entry.url)
        fe.description(entry_html(entry, lang)) if fmt == "rss" else fe.content(
            entry_html(entry, lang), type="html")
        if fmt == "atom":
            fe.summary(entry.excerpt or entry.title)
        fe.category(term=entry.category, label=digest.labels[entry.category])
        fe.published(entry.date)
        fe.updated(entry.date)
    data = fg.rss_str(pretty=True) if fmt == "rss" else fg.atom_str(pretty=True)
    return data.decode("utf-8")


# ---- JSON -----------------------------------------------------------------------------------------

def to_data(digest: Digest) -> dict[str, Any]:
    """The digest as plain JSON-ready data (the same content as the other formats)."""
    names: dict[type, tuple[str, ...]] = {}

    def plain(v: Any) -> Any:
        if isinstance(v, str) or v is None or isinstance(v, (int, float)):
            return v
        if isinstance(v, Period):
            return {"key": v.key, "start": v.start.isoformat(), "end": v.end.isoformat()}
        if isinstance(v, datetime):
            return v.isoformat()
        if is_dataclass(v):
            t = type(v)
            if t not in names:
                names[t] = tuple(f.name for f in fields(v) if f.name != "extra")
            out = {name: plain(getattr(v, name)) for name in names[t]}
            if isinstance(v, Entry):
                out |= {"url": v.url, "networks": list(v.networks)}
            return out
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    sections = [{**plain(s), "change": s.change, "more": s.more} for s in digest.sections]
    names[Digest] = tuple(f.name for f in fields(digest) if f.name not in ("extra", "sections"))
    data: dict[str, Any] = {f.name: None for f in fields(digest) if f.name != "extra"}  # their order
    data |= plain(digest)
    data["sections"] = sections
    data["series"] = [{"period": plain(p.period), "counts": p.counts, "total": p.total}
                      for p in digest.series]
    data["total"], data["previous_total"], data["posts"] = digest.total, digest.previous_total, digest.posts
    return data


def render_json(digest: Digest) -> str:
    text = dumps(to_data(digest))
    # Safe even if pasted into a <script> block or an HTML page by a careless consumer.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


def dumps(data: Any) -> str:
    """`json.dumps(data, ensure_ascii=False, indent=2)`, the same text, for the plain data
    `to_data` makes (dicts with str keys, lists, str, int, float, bool, None), faster: the
    standard library's encoder runs in pure Python as soon as it indents."""
    out: list[str] = []
    string = json.encoder.encode_basestring  # the C one
    floatstr = json.JSONEncoder(ensure_ascii=False).iterencode

    def enc(v: Any, pad: str) -> None:
        if isinstance(v, str):
            out.append(string(v))
        elif v is None:
            out.append("null")
        elif v is True:
            out.append("true")
        elif v is False:
            out.append("false")
        elif isinstance(v, int):
            out.append(int.__repr__(v))
        elif isinstance(v, float):
            out.append("".join(floatstr(v)))
        elif isinstance(v, dict):
            if not v:
                out.append("{}")
                return
            inner = pad + "  "
            first = True
            for k, x in v.items():
                out.append(("{\n" if first else ",\n") + inner + string(k) + ": ")
                first = False
                enc(x, inner)
            out.append("\n" + pad + "}")
        elif isinstance(v, (list, tuple)):
            if not v:
                out.append("[]")
                return
            inner = pad + "  "
            first = True
            for x in v:
                out.append(("[\n" if first else ",\n") + inner)
                first = False
                enc(x, inner)
            out.append("\n" + pad + "]")
        else:
            raise TypeError(f"Object of type {type(v).__name__} is not JSON serializable")

    enc(data, "")
    return "".join(out)


def escape_html(value: Any) -> Markup:
    return escape(value)
