"""The streams' websocket client (`bot.websocket.Connection`) against websockets' own
server on 127.0.0.1: batches, fragments, pings both ways, closes from either side, a server gone
silent, a refused handshake."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trustme
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidStatus
from websockets.sync.server import ServerConnection, serve
from websockets.utils import accept_key

from bot import websocket
from bot.websocket import Connection


@contextmanager
def server(handler: Callable[[ServerConnection], None], **kwargs: Any) -> Iterator[str]:
    with serve(handler, "127.0.0.1", 0, compression=None, **kwargs) as s:
        t = threading.Thread(target=s.serve_forever, daemon=True)
        t.start()
        yield f"ws://127.0.0.1:{s.socket.getsockname()[1]}/xrpc/stream?cursor=1"
        s.shutdown()


def read_all(conn: Connection, timeout: float = 5.0) -> tuple[list[bytes], list[int]]:
    """Every message until the connection ends, and the size of each batch."""
    messages, sizes = [], []
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed):
        while time.monotonic() < deadline:
            batch = conn.recv_batch(0.5)
            messages += batch
            sizes.append(len(batch))
    return messages, sizes


def test_messages_arrive_in_order_in_batches_then_the_close() -> None:
    sent = [bytes([i % 256]) * (i * 37 % 3000) + str(i).encode() for i in range(2000)]

    def handler(ws: ServerConnection) -> None:
        for m in sent:
            ws.send(m)
        ws.close()

    with server(handler) as url, Connection(url, max_size=1 << 20) as conn:
        got, sizes = read_all(conn)
    assert got == sent
    assert max(sizes) > 1, "several messages per socket read"


def test_fragmented_and_text_messages_are_joined() -> None:
    def handler(ws: ServerConnection) -> None:
        ws.send([b"ab", b"cd", b"ef"])  # one binary message in three frames
        ws.send("un texte accentué")
        ws.close()

    with server(handler) as url, Connection(url, max_size=1 << 20) as conn:
        got, _ = read_all(conn)
    assert got == [b"abcdef", "un texte accentué".encode()]


def test_the_first_messages_may_come_with_the_handshake_response() -> None:
    def handler(ws: ServerConnection) -> None:
        for i in range(3):
            ws.send(f"m{i}".encode())
        ws.close()

    with server(handler) as url:
        conn = Connection(url, max_size=1 << 20)
        time.sleep(0.3)  # everything is in the socket before the first read
        with conn:
            got, _ = read_all(conn)
    assert got == [b"m0", b"m1", b"m2"]


def test_a_quiet_server_is_pinged_and_its_pong_keeps_the_connection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(websocket, "PING_AFTER", 0.3)
    monkeypatch.setattr(websocket, "PONG_WITHIN", 0.3)
    done = threading.Event()

    def handler(ws: ServerConnection) -> None:
        done.wait(5)
        ws.send(b"still here")
        ws.close()

    with server(handler, ping_interval=None) as url, Connection(url, max_size=1 << 20) as conn:
        quiet = time.monotonic() + 1.5
        while time.monotonic() < quiet:
            assert conn.recv_batch(0.1) == []
        done.set()
        got, _ = read_all(conn)
    assert got == [b"still here"]


def test_a_server_that_stops_answering_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A relay gone without closing (a half-open TCP connection): no pong, the client gives up."""
    monkeypatch.setattr(websocket, "PING_AFTER", 0.2)
    monkeypatch.setattr(websocket, "PONG_WITHIN", 0.2)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        accepted: list[socket.socket] = []

        def mute_server() -> None:  # completes the handshake, then reads and never answers
            conn, _ = listener.accept()
            accepted.append(conn)
            request = conn.recv(4096)
            key = next(line.split(b":")[1].strip() for line in request.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key"))
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                         + accept_key(key.decode()).encode() + b"\r\n\r\n")

        threading.Thread(target=mute_server, daemon=True).start()
        conn = Connection(f"ws://127.0.0.1:{listener.getsockname()[1]}/", max_size=1 << 20)
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            while time.monotonic() - started < 5:
                conn.recv_batch(0.1)
        assert time.monotonic() - started < 2
        for c in accepted:
            c.close()


def test_close_from_another_thread_ends_a_waiting_read() -> None:
    release = threading.Event()

    def handler(ws: ServerConnection) -> None:
        release.wait(5)

    with server(handler) as url:
        conn = Connection(url, max_size=1 << 20)
        threading.Timer(0.3, conn.close).start()
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            while time.monotonic() - started < 5:
                conn.recv_batch(10)
        assert time.monotonic() - started < 2
        release.set()


def test_a_clean_close_is_connection_closed_ok() -> None:
    def handler(ws: ServerConnection) -> None:
        ws.close(1000, "bye")

    with server(handler) as url, Connection(url, max_size=1 << 20) as conn:
        with pytest.raises(ConnectionClosedOK):
            while True:
                conn.recv_batch(1)


def test_a_message_over_max_size_fails_the_connection() -> None:
    def handler(ws: ServerConnection) -> None:
        ws.send(b"x" * 5000)
        time.sleep(1)

    with server(handler) as url, Connection(url, max_size=1000) as conn:
        with pytest.raises(ConnectionClosed) as e:
            while True:
                conn.recv_batch(1)
    assert e.value.sent is not None and e.value.sent.code == 1009


def test_a_refused_handshake_says_why() -> None:
    def process_request(_ws: ServerConnection, _request: Any) -> Any:
        return _ws.respond(404, "no such stream\n")

    with server(lambda ws: None, process_request=process_request) as url:
        with pytest.raises(InvalidStatus, match="404"):
            Connection(url, max_size=1 << 20)


def test_wss_is_verified_tls() -> None:
    """wss:// (Jetstream's and relays' scheme): TLS with the certificate checked, the stream read
    through it; a certificate the client does not trust is refused."""
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)

    def handler(ws: ServerConnection) -> None:
        ws.send(b"over tls")
        ws.close()

    with server(handler, ssl=server_tls) as url:
        secure = url.replace("ws://127.0.0.1", "wss://localhost")
        with Connection(secure, max_size=1 << 20, tls=client_tls) as conn:
            got, _ = read_all(conn)
        assert got == [b"over tls"]
        with pytest.raises(ssl.SSLCertVerificationError):
            Connection(secure, max_size=1 << 20)  # the system's CAs do not know this one
