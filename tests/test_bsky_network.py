"""The local Bluesky network fixture works with the real (unpatched) atproto SDK.

Everything goes over HTTP/WebSocket to the reference servers on 127.0.0.1.
"""

from __future__ import annotations

import threading
import time

import pytest
from atproto import CAR, AtUri, FirehoseSubscribeReposClient, models, parse_subscribe_repos_message

from tests.bsky_network import (  # the bsky_network fixture comes from tests/conftest.py
    BlueskyNetwork,
    require_bsky,
)

TAG = 'numpolville'


def _need_appview(net: BlueskyNetwork) -> None:
    if net.has_appview:
        return
    if require_bsky():
        pytest.fail('NUMPOLVILLE_REQUIRE_BSKY is set but the local Bluesky network runs without AppView')
    pytest.skip(
        'the local Bluesky network runs without AppView (PostgreSQL missing or NUMPOLVILLE_BSKY_APPVIEW=0)'
    )


def _tagged_post(
    client, repo_did: str, text_before: str = 'Hello from the square '
) -> models.AppBskyFeedPost.CreateRecordResponse:
    """Post ``<text_before>#numpolville`` with a proper tag facet (byte offsets).

    The repo DID is passed explicitly: without AppView ``client.me`` is None.
    """
    hashtag = f'#{TAG}'
    text = f'{text_before}{hashtag}'
    start = len(text_before.encode('utf-8'))
    end = start + len(hashtag.encode('utf-8'))
    facet = models.AppBskyRichtextFacet.Main(
        index=models.AppBskyRichtextFacet.ByteSlice(byte_start=start, byte_end=end),
        features=[models.AppBskyRichtextFacet.Tag(tag=TAG)],
    )
    return client.send_post(text=text, facets=[facet], profile_identify=repo_did)


@pytest.fixture(scope='module')
def alice(bsky_network):
    return bsky_network.client('alice')


@pytest.fixture(scope='module')
def bot(bsky_network):
    return bsky_network.client('bot')


def test_network_started(bsky_network):
    net = bsky_network
    print(
        f'\nbsky network startup: {net.startup_seconds:.1f} s '
        f'(postgres {net.postgres_seconds or 0:.1f} s in parallel, '
        f'node {net.state.get("timings_ms")}), appview={net.has_appview}, rss={net.rss_kib()} KiB'
    )
    for url in (net.pds_url, net.plc_url, net.firehose_url) + ((net.appview_url,) if net.has_appview else ()):
        assert '://localhost:' in url, url
    assert net.firehose_url.startswith('ws://localhost:')
    assert net.firehose_url.endswith('/xrpc/com.atproto.sync.subscribeRepos')
    assert set(net.accounts) == set(BlueskyNetwork.ACCOUNT_NAMES)
    assert net.handle('bot') == 'numpolbot.test'
    dids = [a['did'] for a in net.accounts.values()]
    assert all(d.startswith('did:plc:') for d in dids)
    assert len(set(dids)) == len(dids)


def test_login(bsky_network, bot, alice):
    assert bot.me is not None or not bsky_network.has_appview
    # the session (asked of the PDS) is the account from the state file
    assert bot.com.atproto.server.get_session().did == bsky_network.did('bot')
    assert alice.com.atproto.server.get_session().handle == 'alice.test'
    if bsky_network.has_appview:
        assert bot.me.handle == 'numpolbot.test'
        assert alice.me.did == bsky_network.did('alice')


def test_post_with_tag_visible_and_searchable(bsky_network, alice):
    _need_appview(bsky_network)
    unique = f'Market day {time.time_ns()} '
    post = _tagged_post(alice, bsky_network.did('alice'), unique)
    assert AtUri.from_str(post.uri).collection == 'app.bsky.feed.post'

    t0 = time.monotonic()
    view = bsky_network.wait_visible(post.uri, deadline=10)
    print(f'\npost visible in the AppView after {time.monotonic() - t0:.3f} s')
    assert view.author.did == bsky_network.did('alice')
    assert view.record.text == f'{unique}#{TAG}'
    facet = view.record.facets[0]
    assert facet.features[0].tag == TAG
    assert facet.features[0].py_type == 'app.bsky.richtext.facet#tag'

    # searchPosts through the PDS (proxied to the AppView), as the bot would do.
    # The dev AppView matches a case-sensitive substring of the text.
    bot = bsky_network.client('bot')

    def found():
        res = bot.app.bsky.feed.search_posts({'q': unique.strip(), 'tag': [TAG]})
        return [p for p in res.posts if p.uri == post.uri]

    hits = bsky_network.wait_until(found, deadline=10, what='searchPosts hit')
    assert hits[0].cid == post.cid


def test_follow_and_relationships(bsky_network, alice, bot):
    _need_appview(bsky_network)
    alice_did, bot_did = bsky_network.did('alice'), bsky_network.did('bot')
    follow = alice.follow(bot_did)

    def relationship():
        res = bot.app.bsky.graph.get_relationships({'actor': bot_did, 'others': [alice_did]})
        rel = res.relationships[0]
        return rel if getattr(rel, 'followed_by', None) else None

    rel = bsky_network.wait_until(relationship, deadline=10, what='getRelationships shows the follow')
    assert rel.did == alice_did
    assert rel.followed_by == follow.uri  # alice follows the bot
    assert rel.following is None  # the bot does not follow alice

    followers = bot.app.bsky.graph.get_followers({'actor': bot_did})
    assert alice_did in [f.did for f in followers.followers]
    profile = bot.app.bsky.actor.get_profile({'actor': bot_did})
    assert profile.handle == 'numpolbot.test'


def test_firehose_receives_post_commit(bsky_network, alice):
    """The PDS firehose delivers alice's commits, replayed (cursor) and live."""
    alice_did = bsky_network.did('alice')
    lock = threading.Lock()
    seen = {}  # at-uri -> (monotonic time received, record dict)
    errors = []
    first_frame = threading.Event()

    def on_message(message) -> None:
        first_frame.set()
        commit = parse_subscribe_repos_message(message)
        if not isinstance(commit, models.ComAtprotoSyncSubscribeRepos.Commit) or commit.repo != alice_did:
            return
        car = CAR.from_bytes(commit.blocks) if commit.blocks else None
        for op in commit.ops:
            if op.action == 'create' and op.path.startswith('app.bsky.feed.post/'):
                record = car.blocks.get(op.cid) if car and op.cid else None
                with lock:
                    seen[f'at://{commit.repo}/{op.path}'] = (time.monotonic(), record)

    # 1. Post BEFORE the socket exists: only the cursor can bring it back.
    before = alice.send_post(text=f'Before the socket #{TAG}', profile_identify=alice_did)
    client = FirehoseSubscribeReposClient(params={'cursor': 0}, base_uri=bsky_network.firehose_base_uri)
    thread = threading.Thread(
        target=client.start, args=(on_message, errors.append), name='firehose-test', daemon=True
    )
    thread.start()
    try:
        assert first_frame.wait(10), 'no firehose frame within 10 s'
        bsky_network.wait_until(lambda: before.uri in seen, deadline=10, what='replayed early commit')
        _, record = seen[before.uri]
        assert record is not None and record['text'] == f'Before the socket #{TAG}'

        # 2. Live: the socket is up (frames arrived), a new post must show up quickly.
        t0 = time.monotonic()
        live = _tagged_post(alice, alice_did, 'Live from the town hall ')
        bsky_network.wait_until(lambda: live.uri in seen, deadline=10, what='live commit of the tagged post')
        received_at, record = seen[live.uri]
        print(f'\npost -> firehose: {1000 * (received_at - t0):.1f} ms (createRecord round trip included)')
        assert record['text'] == f'Live from the town hall #{TAG}'
        assert record['facets'][0]['features'][0]['$type'] == 'app.bsky.richtext.facet#tag'
        assert record['facets'][0]['features'][0]['tag'] == TAG
        assert not errors, errors
    finally:
        client.stop()
        thread.join(10)
    assert not thread.is_alive(), 'firehose client did not stop'


def test_memory_after_use(bsky_network):
    """Not a limit, a measurement: the notes say ~320 MB idle, up to ~500 MB after use."""
    rss = bsky_network.rss_kib()
    print(f'\nbsky network memory after the tests: {rss} KiB')
    assert rss['node'] is not None and rss['node'] > 0
