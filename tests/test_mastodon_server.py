"""Tests for the local fake Mastodon server, driven through Mastodon.py over real HTTP."""

# ruff: noqa: F811  (pytest fixtures imported from tests.mastodon_server.pytest_plugin)
from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import websockets
from mastodon import Mastodon, MastodonRatelimitError, StreamListener
from mastodon.errors import MastodonAPIError, MastodonNotFoundError, MastodonServerError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `.venv/bin/pytest` without cwd on sys.path
from tests.mastodon_server import MastodonServer  # noqa: E402
from tests.mastodon_server.pytest_plugin import federated_servers, mastodon_server  # noqa: E402,F401

REFERENCE = json.loads(
    (Path(__file__).parent / "mastodon_server" / "cassettes" / "reference_entities.json").read_text(
        encoding="utf-8"
    )
)


def client(server: MastodonServer, token: str | None = None, **kw: Any) -> Mastodon:
    return Mastodon(access_token=token, api_base_url=server.base_url, **kw)


def raw(
    server: MastodonServer, method: str, path: str, token: str | None = None, **kw: Any
) -> requests.Response:
    headers = kw.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, server.base_url + path, headers=headers, timeout=5, **kw)


def wait_for(pred: Any, timeout: float = 5.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


# ------------------------------------------------------------------ entity shapes
def json_type(v: Any) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
    }[type(v)]


def shape_diff(ref: Any, ours: Any, path: str = "$") -> list[str]:
    """Same keys and same JSON types, recursively; null on either side matches (nullable fields)."""
    if ref is None or ours is None:
        return []
    if json_type(ref) != json_type(ours):
        return [f"{path}: {json_type(ref)} != {json_type(ours)}"]
    if isinstance(ref, dict):
        out = [f"{path}: missing key {k!r}" for k in ref if k not in ours]
        out += [f"{path}: extra key {k!r}" for k in ours if k not in ref]
        for k in ref:
            if k in ours:
                out += shape_diff(ref[k], ours[k], f"{path}.{k}")
        return out
    if isinstance(ref, list) and ref and ours:
        return shape_diff(ref[0], ours[0], f"{path}[0]")
    return []


def test_entities_match_recorded_mastodon_shapes(mastodon_server: MastodonServer) -> None:
    s = mastodon_server
    bot_id, bot_tok = s.create_account("bot", note="I curate", bot=True)
    alice_id, alice_tok = s.create_account("alice")
    app = raw(s, "POST", "/api/v1/apps", data={"client_name": "numpolville", "scopes": "read write"}).json()
    tok = raw(
        s,
        "POST",
        "/oauth/token",
        data={
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "grant_type": "client_credentials",
        },
    ).json()
    s.follow("alice", "bot")
    tagged = raw(
        s,
        "POST",
        "/api/v1/statuses",
        alice_tok,
        data={"status": "Hi #numpolville @bot https://example.org/x"},
    ).json()
    reblog = raw(s, "POST", f"/api/v1/statuses/{tagged['id']}/reblog", bot_tok).json()
    ours = {
        "status": tagged,
        "account": tagged["account"],
        "tag": tagged["tags"][0],
        "mention": tagged["mentions"][0],
        "card": tagged["card"],
        "application_in_status": tagged["application"],
        "reblog": reblog,
        "credential_account": raw(s, "GET", "/api/v1/accounts/verify_credentials", bot_tok).json(),
        "relationship": raw(s, "GET", f"/api/v1/accounts/relationships?id[]={alice_id}", bot_tok).json()[0],
        "notification_mention": next(
            n for n in raw(s, "GET", "/api/v1/notifications", bot_tok).json() if n["type"] == "mention"
        ),
        "context": raw(s, "GET", f"/api/v1/statuses/{tagged['id']}/context", bot_tok).json(),
        "search_v2": raw(s, "GET", "/api/v2/search?q=alice", bot_tok).json(),
        "application": app,
        "token": tok,
        "instance_v1": raw(s, "GET", "/api/v1/instance").json(),
        "instance_v2": raw(s, "GET", "/api/v2/instance").json(),
        "nodeinfo_wellknown": raw(s, "GET", "/.well-known/nodeinfo").json(),
        "nodeinfo": raw(s, "GET", "/nodeinfo/2.0").json(),
        "streaming_health": raw(s, "GET", "/api/v1/streaming/health").text,
        "error_401": raw(s, "GET", "/api/v1/timelines/home", "wrong").json(),
        "error_404_status": raw(s, "GET", "/api/v1/statuses/0").json(),
        "error_404_lookup": raw(s, "GET", "/api/v1/accounts/lookup?acct=nobody").json(),
        "error_422": raw(s, "POST", "/api/v1/statuses", bot_tok, data={"status": "x" * 501}).json(),
    }
    problems: list[str] = []
    for name, value in ours.items():
        problems += [f"{name}: {p}" for p in shape_diff(REFERENCE[name], value)]
    assert problems == []
    assert ours["error_401"] == REFERENCE["error_401"] == {"error": "The access token is invalid"}
    assert ours["error_404_lookup"] == REFERENCE["error_404_lookup"]
    assert ours["streaming_health"] == "OK"
    assert ours["instance_v2"]["configuration"]["statuses"]["max_characters"] == 500
    assert ours["instance_v2"]["configuration"]["urls"]["streaming"] == s.base_url.replace("http", "ws")
    assert ours["credential_account"]["bot"] is True
    assert ours["credential_account"]["note"] == "<p>I curate</p>"


def test_version_detection_and_headers(mastodon_server: MastodonServer) -> None:
    _, tok = mastodon_server.create_account("alice")
    api = client(mastodon_server, tok, version_check_mode="created")
    assert api.retrieve_mastodon_version() == "4.3.0"
    assert api.verify_minimum_version("4.3.0", cached=True)
    assert (
        client(mastodon_server, tok, version_check_mode="none").account_verify_credentials().acct == "alice"
    )
    r = raw(mastodon_server, "GET", "/api/v1/accounts/verify_credentials", tok)
    assert r.headers["X-RateLimit-Limit"] == "300"
    assert int(r.headers["X-RateLimit-Remaining"]) < 300
    assert r.headers["X-RateLimit-Reset"].endswith("Z")


# ------------------------------------------------------------------ oauth
def test_app_registration_and_authorization_code_login(mastodon_server: MastodonServer) -> None:
    s = mastodon_server
    s.create_account("alice")
    client_id, client_secret = Mastodon.create_app(
        "numpolville-bot", api_base_url=s.base_url, scopes=["read", "write"]
    )
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=s.base_url)
    url = api.auth_request_url(scopes=["read", "write"])
    page = requests.get(url + "&username=alice", timeout=5)
    code = page.text.split('class="oauth-code" readonly type="text" value="')[1].split('"')[0]
    token = api.log_in(code=code, scopes=["read", "write"])
    assert Mastodon(access_token=token, api_base_url=s.base_url).me().username == "alice"
    # redirect flow
    redirect_app = raw(
        s,
        "POST",
        "/api/v1/apps",
        data={"client_name": "x", "redirect_uris": "http://127.0.0.1:1/cb", "scopes": "read"},
    ).json()
    r = requests.get(
        s.base_url + "/oauth/authorize",
        allow_redirects=False,
        timeout=5,
        params={
            "client_id": redirect_app["client_id"],
            "redirect_uri": "http://127.0.0.1:1/cb",
            "response_type": "code",
            "scope": "read",
            "username": "alice",
            "state": "xyz",
        },
    )
    assert r.status_code == 302
    assert parse_qs(urlparse(r.headers["Location"]).query)["state"] == ["xyz"]
    # revoke
    raw(
        s,
        "POST",
        "/oauth/revoke",
        data={"token": token, "client_id": client_id, "client_secret": client_secret},
    )
    assert raw(s, "GET", "/api/v1/accounts/verify_credentials", token).status_code == 401


# ------------------------------------------------------------------ statuses
def test_post_get_reply_edit_delete(mastodon_server: MastodonServer) -> None:
    s = mastodon_server
    _, bot_tok = s.create_account("bot", bot=True)
    _, alice_tok = s.create_account("alice")
    bot, alice = client(s, bot_tok), client(s, alice_tok)
    prompt = bot.status_post("What's new in #Numpolville?")
    assert prompt.content.startswith("<p>What&#x27;s new in <a href=") or "What" in prompt.content
    assert prompt.tags[0].name == "numpolville"
    reply = alice.status_post("Sunny!", in_reply_to_id=prompt.id)
    assert reply.in_reply_to_id == prompt.id and reply.in_reply_to_account_id == prompt.account.id
    assert [m.acct for m in reply.mentions] == ["bot"]  # auto-mention of the replied-to author
    ctx = bot.status_context(prompt.id)
    assert [d.id for d in ctx.descendants] == [reply.id]
    edited = alice.status_update(reply.id, "Sunny and warm!")
    assert edited.edited_at is not None and "warm" in edited.content
    assert alice.status(reply.id).content == edited.content
    alice.status_delete(reply.id)
    with pytest.raises(MastodonNotFoundError):
        alice.status(reply.id)
    with pytest.raises(MastodonAPIError) as exc:
        bot.status_post("x" * 501)
    assert exc.value.args[1] == 422


def test_idempotency_key_returns_same_status(mastodon_server: MastodonServer) -> None:
    _, tok = mastodon_server.create_account("bot")
    api = client(mastodon_server, tok)
    first = api.status_post("Prompt #numpolville", idempotency_key="prompt-2024-01-01")
    second = api.status_post("Prompt #numpolville", idempotency_key="prompt-2024-01-01")
    assert first.id == second.id
    assert len(mastodon_server.statuses("bot")) == 1
    assert api.status_post("Prompt #numpolville", idempotency_key="other").id != first.id


def test_reblog_and_favourite(mastodon_server: MastodonServer) -> None:
    s = mastodon_server
    _, bot_tok = s.create_account("bot")
    alice_id, alice_tok = s.create_account("alice")
    post = client(s, alice_tok).status_post("#numpolville fair")
    bot = client(s, bot_tok)
    rb1 = bot.status_reblog(post.id)
    rb2 = bot.status_reblog(post.id)
    assert rb1.id == rb2.id and rb1.reblog.id == post.id and rb1.reblog.reblogged is True
    assert [a.acct for a in bot.status_reblogged_by(post.id)] == ["bot"]
    fav = bot.status_favourite(post.id)
    assert fav.favourited is True and fav.favourites_count == 1
    assert len(s.reblogs()) == 1 and len(s.favourites()) == 1
    assert {n["type"] for n in s.notifications("alice")} == {"reblog", "favourite"}
    bot.status_unreblog(post.id)
    bot.status_unfavourite(post.id)
    assert s.reblogs() == [] and s.favourites() == []
    assert bot.status(post.id).reblogs_count == 0


# ------------------------------------------------------------------ timelines & paging
def test_tag_timeline_paging(mastodon_server: MastodonServer) -> None:
    s = mastodon_server
    s.create_account("alice")
    ids = [s.post("alice", f"post {i} #NumPolVille")["id"] for i in range(7)]
    s.post("alice", "unlisted #numpolville", visibility="unlisted")
    s.post("alice", "other #elsewhere")
    anon = client(s)  # public tag timelines need no token
    page1 = anon.timeline_hashtag("numpolville", limit=3)
    assert [p.id for p in page1] == ids[::-1][:3]
    page2 = anon.fetch_next(page1)
    assert [p.id for p in page2] == ids[::-1][3:6]
    assert [p.id for p in anon.fetch_previous(page2)] == ids[::-1][:3]
    assert [p.id for p in anon.timeline_hashtag("NUMPOLVILLE", since_id=ids[4])] == ids[:4:-1]
    assert [p.id for p in anon.timeline_hashtag("numpolville", min_id=ids[1], limit=2)] == [ids[3], ids[2]]
    assert len(anon.fetch_remaining(anon.timeline_hashtag("numpolville", limit=2))) == 7
    link = raw(s, "GET", "/api/v1/timelines/tag/numpolville?limit=2").headers["Link"]
    assert f'max_id={ids[5]}>; rel="next"' in link and f'min_id={ids[6]}>; rel="prev"' in link


@pytest.mark.parametrize(("flavour", "kept"), [
    ("mastodon", {"limit": ["2"], "local": ["false"]}),  # PERMITTED_PARAMS: no `remote`
    ("gotosocial", {"limit": ["2"]}),  # internal/util/paging.go: limit and the id
    ("akkoma", {"limit": ["2"], "local": ["false"], "remote": ["false"]}),  # all but the ids
])
def test_tag_timeline_link_header_per_flavour(flavour: str, kept: dict[str, list[str]]) -> None:
    """The next page's link, in each family's form; Mastodon.py takes its max_id alone and
    repeats the request's own parameters, so a filter the link drops is kept."""
    with MastodonServer(flavour=flavour) as s:
        _, token = s.create_account("alice")
        ids = [s.post("alice", f"post {i} #numpolville")["id"] for i in range(3)]
        response = raw(s, "GET", "/api/v1/timelines/tag/numpolville?limit=2&local=false&remote=false",
                       token=token)
        following = requests.utils.parse_header_links(response.headers["Link"])[0]
        assert following["rel"] == "next"
        query = parse_qs(urlparse(following["url"]).query)
        assert query.pop("max_id") == [ids[1]] and query == kept
        page = client(s, token).timeline_hashtag("numpolville", limit=2, remote=False)
        assert client(s, token).fetch_next(page)[0].id == ids[0]
        assert "limit=2" in s.requests("GET", "/api/v1/timelines/tag/")[-1]["query"]
        assert raw(s, "GET", f"/api/v1/timelines/tag/numpolville?max_id={ids[0]}",
                   token=token).headers.get("Link") is None, "an empty page has no Link"


# ------------------------------------------------------------------ notifications & relationships
def test_mention_notifications_and_relationships(mastodon_server: MastodonServer) -> None:
    s = mastodon_server
    bot_id, bot_tok = s.create_account("bot", bot=True)
    alice_id, alice_tok = s.create_account("alice")
    bot, alice = client(s, bot_tok), client(s, alice_tok)
    alice.account_follow(bot_id)
    alice.status_post("hey @bot look")
    notes = bot.notifications(types=["mention"])
    assert len(notes) == 1 and notes[0].status.account.acct == "alice"
    assert [n.type for n in bot.notifications(exclude_types=["mention"])] == ["follow"]
    rel = bot.account_relationships([alice_id])[0]
    assert rel.followed_by is True and rel.following is False
    assert [a.acct for a in bot.account_followers(bot_id)] == ["alice"]
    bot.notifications_dismiss(notes[0].id)
    assert [n.type for n in bot.notifications()] == ["follow"]
    bot.notifications_clear()
    assert bot.notifications() == []
    assert bot.account_lookup("alice").id == alice_id


# ------------------------------------------------------------------ federation
def test_search_resolves_status_from_other_server(federated_servers: Any) -> None:
    home, piaille = federated_servers
    _, tok = home.create_account("bot")
    piaille.create_account("zoe")
    origin = piaille.post("zoe", "Hello from afar #numpolville")
    assert origin["url"].startswith("https://piaille.test/@zoe/")
    api = client(home, tok)
    found = api.search_v2(origin["url"], resolve=True).statuses
    assert len(found) == 1
    local = found[0]
    assert local.id != origin["id"] and local.uri == origin["uri"] and local.url == origin["url"]
    assert local.account.acct == "zoe@piaille.test"
    again = api.search_v2(origin["uri"], resolve=True).statuses
    assert again[0].id == local.id  # same post, recognised by uri
    assert api.status_favourite(local.id).favourited
    assert [s.id for s in client(home).timeline_hashtag("numpolville")] == [local.id]


# ------------------------------------------------------------------ streaming (SSE via Mastodon.py)
class Collector(StreamListener):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_update(self, status: Any) -> None:
        self.events.append(("update", status))

    def on_notification(self, notification: Any) -> None:
        self.events.append(("notification", notification))

    def on_delete(self, status_id: Any) -> None:
        self.events.append(("delete", status_id))

    def on_status_update(self, status: Any) -> None:
        self.events.append(("status.update", status))

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]


def test_sse_hashtag_and_user_streams(mastodon_server: MastodonServer) -> None:
    s = mastodon_server
    _, bot_tok = s.create_account("bot", bot=True)
    s.create_account("alice")
    api = client(s, bot_tok)
    tag_l, user_l = Collector(), Collector()
    h1 = api.stream_hashtag(
        "numpolville", tag_l, run_async=True, reconnect_async=True, reconnect_async_wait_sec=0.2
    )
    h2 = api.stream_user(user_l, run_async=True, reconnect_async=True, reconnect_async_wait_sec=0.2)
    try:
        wait_for(lambda: s.open_streams() == 2)
        st = s.post("alice", "Hi @bot #NumPolVille")
        wait_for(lambda: "update" in tag_l.kinds() and "notification" in user_l.kinds())
        assert tag_l.events[0][1].id == st["id"]
        assert user_l.events[0][1].type == "mention"
        s.edit(st["id"], "Edited #numpolville")
        wait_for(lambda: "status.update" in tag_l.kinds())
        s.delete(st["id"])
        wait_for(lambda: "delete" in tag_l.kinds())
        assert tag_l.events[-1][1] == st["id"] or str(tag_l.events[-1][1]) == st["id"]
        # reconnect after an abrupt drop
        s.drop_streams()
        wait_for(lambda: s.open_streams() == 2 and s.streams_opened() == 4)
        st2 = s.post("alice", "again #numpolville")
        wait_for(lambda: any(k == "update" and v.id == st2["id"] for k, v in tag_l.events))
    finally:
        h1.close()
        h2.close()


def test_streaming_disabled_fault(mastodon_server: MastodonServer) -> None:
    s = mastodon_server
    s.streaming_enabled = False
    assert raw(s, "GET", "/api/v1/streaming/health").status_code == 404
    assert raw(s, "GET", "/api/v1/streaming/hashtag?tag=x", stream=True).status_code == 404
    s.streaming_enabled = True
    s.hashtag_stream_enabled = False
    assert raw(s, "GET", "/api/v1/streaming/hashtag?tag=x", stream=True).status_code == 404
    assert raw(s, "GET", "/api/v1/streaming/health").text == "OK"


# ------------------------------------------------------------------ streaming (WebSocket)
def test_websocket_transport(mastodon_server: MastodonServer) -> None:
    s = mastodon_server
    _, tok = s.create_account("bot")
    s.create_account("alice")
    s.follow("bot", "alice")  # so alice's posts reach bot's home (user) stream
    ws_url = s.base_url.replace("http", "ws") + "/api/v1/streaming"

    async def scenario() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        async with (
            websockets.connect(f"{ws_url}?access_token={tok}&stream=hashtag&tag=numpolville") as a,
            websockets.connect(f"{ws_url}?access_token={tok}") as b,
        ):
            await b.send(json.dumps({"type": "subscribe", "stream": "user"}))
            await asyncio.sleep(0.2)
            await asyncio.to_thread(s.post, "alice", "@bot #numpolville via ws")
            got.append(json.loads(await asyncio.wait_for(a.recv(), 5)))
            got.append(json.loads(await asyncio.wait_for(b.recv(), 5)))
            got.append(json.loads(await asyncio.wait_for(b.recv(), 5)))
            await asyncio.to_thread(s.drop_streams)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(a.recv(), 5)
        return got

    got = asyncio.run(scenario())
    assert got[0]["stream"] == ["hashtag", "numpolville"] and got[0]["event"] == "update"
    assert "#<span>numpolville</span>" in json.loads(got[0]["payload"])["content"]
    assert {m["event"] for m in got[1:]} == {"update", "notification"}
    assert all(m["stream"] == ["user"] for m in got[1:])


# ------------------------------------------------------------------ faults
def test_rate_limit_429_and_wait_mode(mastodon_server: MastodonServer) -> None:
    s = mastodon_server
    _, tok = s.create_account("bot")
    s.set_rate_limit(3, period=1.0)
    while time.time() % 1.0 > 0.3:  # start early in a window so the burst below hits the limit
        time.sleep(0.02)
    statuses = [raw(s, "GET", "/api/v1/accounts/verify_credentials", tok) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert statuses[-1].json() == {"error": "Too many requests"}
    assert statuses[-1].headers["X-RateLimit-Remaining"] == "0" and "Retry-After" in statuses[-1].headers
    with pytest.raises(MastodonRatelimitError):
        client(s, tok, ratelimit_method="throw", version_check_mode="none").me()
    waiting = client(s, tok, ratelimit_method="wait", version_check_mode="none")
    for _ in range(6):
        assert waiting.me().acct == "bot"
    s.set_rate_limit(300, period=300)
    s.force_status(r"/api/v1/timelines/tag/", 429, count=1, retry_after=1)
    before = time.time()
    assert client(s, tok, ratelimit_method="wait", version_check_mode="none").timeline_hashtag("x") == []
    assert time.time() - before >= 0.5
    assert len(s.requests(path_regex="timelines/tag", status=429)) == 1


def test_forced_503_and_delay(mastodon_server: MastodonServer) -> None:
    s = mastodon_server
    _, tok = s.create_account("bot")
    api = client(s, tok, version_check_mode="none")
    s.force_status(r"^/api/v1/statuses$", 503, count=1)
    with pytest.raises(MastodonServerError):
        api.status_post("first try")
    assert api.status_post("second try").content == "<p>second try</p>"
    s.delay(r"verify_credentials", 0.3)
    before = time.time()
    api.me()
    assert time.time() - before >= 0.3
    assert [r["status"] for r in s.requests("POST", r"^/api/v1/statuses$")] == [503, 200]


def test_restart_on_same_port_keeps_state() -> None:
    server = MastodonServer().start()
    try:
        _, tok = server.create_account("bot")
        port = server.port
        st = client(server, tok).status_post("before restart #numpolville")
        server.stop()
        with pytest.raises(requests.ConnectionError):
            requests.get(server.base_url + "/api/v1/instance", timeout=2)
        server.start()
        assert server.port == port
        assert client(server, tok).status(st.id).id == st.id
    finally:
        server.stop()


def test_http_control_api(mastodon_server: MastodonServer) -> None:
    s = mastodon_server
    made = requests.post(
        s.base_url + "/_test/accounts", json={"username": "demo", "bot": True}, timeout=5
    ).json()
    requests.post(s.base_url + "/_test/post", json={"username": "demo", "text": "hi #numpolville"}, timeout=5)
    assert client(s, made["token"]).me().bot is True
    assert len(client(s).timeline_hashtag("numpolville")) == 1
    requests.post(
        s.base_url + "/_test/faults",
        json={"force_status": {"path_regex": "instance", "status_code": 502}},
        timeout=5,
    )
    assert raw(s, "GET", "/api/v1/instance").status_code == 502
    state = requests.get(s.base_url + "/_test/state", timeout=5).json()
    assert state["tokens"]["demo"] == made["token"]
    assert all(
        r["path"].startswith("/api") for r in requests.get(s.base_url + "/_test/requests", timeout=5).json()
    )
