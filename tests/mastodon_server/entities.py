"""Render state objects as Mastodon REST JSON (shapes taken from Mastodon 4.x recordings).

Why: the bot and Mastodon.py must not be able to tell this server from a real
one, so every entity carries the same keys and JSON types as the recorded
reference in `cassettes/reference_entities.json`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from .render_text import note_html
from .state import Account, App, Notification, Status, World

API_VERSION = 2


def iso(dt: Optional[datetime]) -> Optional[str]:
    if dt is None:
        return None
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _approval(policy: str) -> dict[str, Any]:
    return {"automatic": ["public"], "manual": [], "current_user": policy}


def account(world: World, acc: Account, credentials: bool = False) -> dict[str, Any]:
    """Account entity; `credentials=True` adds `source`/`role` like verify_credentials."""
    base = world.base
    out: dict[str, Any] = {
        "id": acc.id,
        "username": acc.username,
        "acct": acc.acct,
        "display_name": acc.display_name,
        "locked": acc.locked,
        "bot": acc.bot,
        "discoverable": True,
        "indexable": True,
        "group": False,
        "created_at": iso(acc.created_at.replace(hour=0, minute=0, second=0, microsecond=0)),
        "note": note_html(acc.note),
        "url": acc.url,
        "uri": acc.uri,
        "avatar": f"{base}/avatars/original/missing.png",
        "avatar_static": f"{base}/avatars/original/missing.png",
        "avatar_description": "",
        "header": f"{base}/headers/original/missing.png",
        "header_static": f"{base}/headers/original/missing.png",
        "header_description": "",
        "followers_count": len(world.followers_of(acc.id)),
        "following_count": len(world.following_of(acc.id)),
        "statuses_count": world.statuses_count(acc.id),
        "last_status_at": acc.last_status_at.strftime("%Y-%m-%d") if acc.last_status_at else None,
        "hide_collections": False,
        "show_media": True,
        "show_media_replies": True,
        "show_featured": True,
        "noindex": False,
        "feature_approval": _approval("automatic"),
    }
    if credentials:
        out["source"] = {
            "privacy": "public",
            "sensitive": False,
            "language": None,
            "note": acc.note,
            "fields": [],
            "follow_requests_count": 0,
            "hide_collections": False,
            "discoverable": True,
            "indexable": True,
            "attribution_domains": [],
            "quote_policy": "public",
        }
    out.update({"emojis": [], "roles": [], "fields": []})
    if credentials:
        out["role"] = {
            "id": "-99",
            "name": "",
            "permissions": "65536",
            "color": "",
            "highlighted": False,
            "collection_limit": 10,
        }
    return out


def card(url: str) -> dict[str, Any]:
    """Preview card for the first link; title is derived from the URL (no fetching in tests)."""
    host = url.split("/")[2] if "://" in url else url
    return {
        "url": url,
        "title": host,
        "description": "",
        "language": "en",
        "type": "link",
        "author_name": "",
        "author_url": "",
        "provider_name": host,
        "provider_url": "",
        "html": "",
        "width": 0,
        "height": 0,
        "image": None,
        "image_description": "",
        "embed_url": "",
        "blurhash": None,
        "published_at": None,
        "missing_attribution": False,
        "authors": [],
    }


def status(world: World, st: Status, viewer: Optional[str]) -> dict[str, Any]:
    """Status entity as seen by `viewer` (account id or None for anonymous)."""
    acc = world.accounts[st.account_id]
    reblog = None
    if st.reblog_of_id is not None:
        orig = world.statuses.get(st.reblog_of_id) or world.deleted.get(st.reblog_of_id)
        reblog = status(world, orig, viewer) if orig else None
    mentions = []
    for mid in st.mention_ids:
        m = world.accounts.get(mid)
        if m:
            mentions.append({"id": m.id, "username": m.username, "url": m.url, "acct": m.acct})
    target = st.reblog_of_id or st.id
    out: dict[str, Any] = {
        "id": st.id,
        "created_at": iso(st.created_at),
        "in_reply_to_id": st.in_reply_to_id,
        "in_reply_to_account_id": st.in_reply_to_account_id,
        "sensitive": st.sensitive,
        "spoiler_text": st.spoiler_text,
        "visibility": st.visibility,
        "language": st.language,
        "uri": st.uri,
        "url": st.url,
        "replies_count": world.replies_count(st.id),
        "reblogs_count": world.reblogs_count(st.id),
        "favourites_count": world.favourites_count(st.id),
        "quotes_count": 0,
        "edited_at": iso(st.edited_at),
    }
    if viewer is not None:
        out.update(
            {
                "favourited": (viewer, target) in world.favourites,
                "reblogged": (viewer, target) in world.reblogs,
                "muted": False,
                "bookmarked": False,
            }
        )
        if viewer == st.account_id and st.reblog_of_id is None:
            out["pinned"] = False
    out.update(
        {
            "content": st.content,
            "filtered": [],
            "reblog": reblog,
        }
    )
    if st.local:
        out["application"] = st.application or {"name": "Web", "website": None}
    out.update(
        {
            "account": account(world, acc),
            "media_attachments": [],
            "mentions": mentions,
            "tags": [{"name": t, "url": f"{world.base}/tags/{t}"} for t in st.tags],
            "emojis": [],
            "tagged_collections": [],
            "quote": None,
            "card": card(st.card_url) if st.card_url else None,
            "poll": None,
            "quote_approval": _approval("automatic" if viewer is not None else "unknown"),
        }
    )
    if world.flavour.interaction_policy:
        out["interaction_policy"] = interaction_policy(acc.reblog_policy)
    return out


def interaction_policy(reblog: str) -> dict[str, Any]:
    """GoToSocial's status `interaction_policy` (internal/api/model/interactionpolicy.go), with the
    deprecated `always`/`with_approval` names beside `automatic_approval`/`manual_approval`."""
    def rules(automatic: list[str], manual: list[str]) -> dict[str, list[str]]:
        return {"automatic_approval": automatic, "manual_approval": manual,
                "always": automatic, "with_approval": manual}
    reblogs = {"public": (["public"], []), "approval": (["author"], ["public"]),
               "nobody": (["author"], [])}[reblog]
    return {"can_favourite": rules(["public", "me"], []), "can_reply": rules(["public", "me"], []),
            "can_reblog": rules(*reblogs)}


def notification(world: World, n: Notification) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": n.id,
        "type": n.type,
        "created_at": iso(n.created_at),
        "group_key": f"ungrouped-{n.id}",
        "account": account(world, world.accounts[n.from_account_id]),
    }
    if n.status_id is not None:
        st = world.statuses.get(n.status_id)
        if st is not None:
            out["status"] = status(world, st, n.account_id)
    return out


def relationship(world: World, viewer: str, other: str) -> dict[str, Any]:
    following = (viewer, other) in world.follows
    return {
        "id": other,
        "following": following,
        "showing_reblogs": following,
        "notifying": False,
        "languages": None,
        "followed_by": (other, viewer) in world.follows,
        "blocking": False,
        "blocked_by": False,
        "muting": False,
        "muting_notifications": False,
        "muting_expires_at": None,
        "requested": False,
        "requested_by": False,
        "domain_blocking": False,
        "endorsed": False,
        "note": "",
    }


def application(app: App, with_secret: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": app.id,
        "name": app.name,
        "website": app.website,
        "scopes": app.scopes,
        "redirect_uris": app.redirect_uris,
        "vapid_key": "BPbaJXyseslyEcU9zb-vqWsMSnTPKhjpCB7g2B6H4Xku1g2rmZl8G1kwo2Nq9pUmD6WH"
        "F0HdCknyUbRtGJQpzsc=",
        "redirect_uri": "\n".join(app.redirect_uris),
    }
    if with_secret:
        out.update(
            {"client_id": app.client_id, "client_secret": app.client_secret, "client_secret_expires_at": 0}
        )
    return out


_MIME = ["image/jpeg", "image/png", "image/gif", "image/webp", "video/mp4"]
_POLLS = {"max_options": 4, "max_characters_per_option": 50, "min_expiration": 300, "max_expiration": 2629746}


def instance_v1(world: World, http_base: str, max_characters: int, streaming: str) -> dict[str, Any]:
    local_users = sum(1 for a in world.accounts.values() if a.domain is None)
    local_statuses = sum(1 for s in world.statuses.values() if s.local)
    return {
        "uri": world.domain,
        "title": "Mastodon",
        "short_description": "",
        "description": "",
        "email": "",
        "version": world.flavour.version,
        "urls": {"streaming_api": streaming},
        "stats": {"user_count": local_users, "status_count": local_statuses, "domain_count": 1},
        "thumbnail": f"{http_base}/packs/media/images/preview.png",
        "languages": ["en"],
        "registrations": True,
        "approval_required": False,
        "invites_enabled": True,
        "configuration": {
            "accounts": {"max_featured_tags": 10},
            "statuses": {
                "max_characters": max_characters,
                "max_media_attachments": 4,
                "characters_reserved_per_url": 23,
            },
            "media_attachments": {
                "supported_mime_types": _MIME,
                "image_size_limit": 16777216,
                "image_matrix_limit": 33177600,
                "video_size_limit": 103809024,
                "video_frame_rate_limit": 120,
                "video_matrix_limit": 8294400,
            },
            "polls": dict(_POLLS),
        },
        "contact_account": None,
        "rules": [],
    }


def instance_v2(world: World, http_base: str, max_characters: int, streaming: str) -> dict[str, Any]:
    local_users = sum(1 for a in world.accounts.values() if a.domain is None)
    feeds = {"local": "public", "remote": "public"}
    return {
        "domain": world.domain,
        "title": "Mastodon",
        "version": world.flavour.version,
        "source_url": "https://github.com/mastodon/mastodon",
        "description": "",
        "usage": {"users": {"active_month": local_users}},
        "thumbnail": {"url": f"{http_base}/packs/media/images/preview.png", "description": ""},
        "icon": [{"src": f"{http_base}/packs/media/icons/android-chrome-36x36.png", "size": "36x36"}],
        "languages": ["en"],
        "configuration": {
            "urls": {
                "streaming": streaming,
                "status": None,
                "about": f"{http_base}/about",
                "privacy_policy": f"{http_base}/privacy-policy",
                "terms_of_service": None,
            },
            "vapid": {
                "public_key": "BPbaJXyseslyEcU9zb-vqWsMSnTPKhjpCB7g2B6H4Xku1g2rmZl8G1kwo2Nq9pUmD6WHF0HdCknyUb"
                "RtGJQpzsc="
            },
            "accounts": {
                "max_display_name_length": 30,
                "max_note_length": 500,
                "max_avatar_description_length": 150,
                "max_header_description_length": 150,
                "max_featured_tags": 10,
                "max_pinned_statuses": 5,
                "max_profile_fields": 4,
                "profile_field_name_limit": 255,
                "profile_field_value_limit": 255,
            },
            "statuses": {
                "max_characters": max_characters,
                "max_media_attachments": 4,
                "characters_reserved_per_url": 23,
            },
            "media_attachments": {
                "description_limit": 1500,
                "image_matrix_limit": 33177600,
                "image_size_limit": 16777216,
                "supported_mime_types": _MIME,
                "video_frame_rate_limit": 120,
                "video_matrix_limit": 8294400,
                "video_size_limit": 103809024,
            },
            "polls": dict(_POLLS),
            "translation": {"enabled": False},
            "timelines_access": {
                "live_feeds": dict(feeds),
                "hashtag_feeds": dict(feeds),
                "trending_link_feeds": dict(feeds),
            },
            "limited_federation": False,
        },
        "registrations": {
            "enabled": True,
            "approval_required": False,
            "reason_required": False,
            "message": None,
            "min_age": None,
            "url": None,
        },
        "api_versions": {"mastodon": API_VERSION},
        "wrapstodon": None,
        "contact": {"email": "", "account": None},
        "rules": [],
    }


def nodeinfo(world: World) -> dict[str, Any]:
    users = sum(1 for a in world.accounts.values() if a.domain is None)
    return {
        "version": "2.0",
        "software": {"name": world.flavour.software, "version": world.flavour.version},
        "protocols": ["activitypub"],
        "services": {"outbound": [], "inbound": []},
        "usage": {
            "users": {"total": users, "activeMonth": users, "activeHalfyear": users},
            "localPosts": sum(1 for s in world.statuses.values() if s.local),
        },
        "openRegistrations": True,
        "metadata": {"nodeName": "Mastodon", "nodeDescription": ""},
    }
