"""Item 3's stand-in for a relay: a websocket server on 127.0.0.1 that sends a recorded corpus,
`total` frames per connection, then closes.

It runs in its own process (`python -m bench.serve CORPUS TOTAL`, which prints its port) and
writes the corpus as websocket frames encoded once, with `sendall`: serving costs the client
under test no CPU time and never keeps it waiting, so the bot's client and the SDK's are compared
on their own work. The handshake is the minimal one of RFC 6455 (no extensions, no compression).
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import sys
from pathlib import Path

from bench.record import read_frames

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLOSE_NORMAL = b"\x88\x02\x03\xe8"  # FIN + close, code 1000


def encode(message: bytes) -> bytes:
    """One unmasked binary frame (FIN set), as a server sends it."""
    n = len(message)
    if n < 126:
        return bytes([0x82, n]) + message
    if n < 1 << 16:
        return b"\x82\x7e" + struct.pack(">H", n) + message
    return b"\x82\x7f" + struct.pack(">Q", n) + message


def handshake(conn: socket.socket) -> None:
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("the client left during the handshake")
        request += chunk
    key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())  # noqa: S324 (RFC 6455)
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")


def send_corpus(conn: socket.socket, encoded: list[bytes], total: int) -> None:
    whole = b"".join(encoded)
    passes, rest = divmod(total, len(encoded))
    for _ in range(passes):
        conn.sendall(whole)
    conn.sendall(b"".join(encoded[:rest]) + CLOSE_NORMAL)
    conn.shutdown(socket.SHUT_WR)  # the client answers the close frame, then sees the end
    conn.settimeout(5)
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass


def serve(corpus: Path, total: int) -> None:
    encoded = [encode(m) for m in read_frames(corpus)]
    with socket.create_server(("127.0.0.1", 0)) as server:
        print(server.getsockname()[1], flush=True)
        while True:
            conn, _ = server.accept()
            with conn:
                try:
                    handshake(conn)
                    send_corpus(conn, encoded, total)
                except (ConnectionError, OSError, StopIteration) as e:
                    print(f"client gone: {e}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]))
