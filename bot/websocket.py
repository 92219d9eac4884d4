"""A blocking websocket client for the streams of both networks, without a reader thread: websockets' Sans-I/O
protocol (the one its own clients are built on) over a plain socket read in the caller's thread.

The firehose sends thousands of small messages a second, and the bot reads them in batches. The
`websockets.sync` client hands each message from its reader thread to the caller through a
queue and locks (about 20 µs a message here); reading here, every message already in one socket
read comes back at once for a few µs each: the stream reads three times as fast.

Control frames are the protocol's business (it answers pings and closes); a silent connection
is pinged after `PING_AFTER` seconds and given up `PONG_WITHIN` seconds later, so a relay gone
without a word is noticed, as the websockets clients do by default.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Mapping, Sequence

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosedError, InvalidHandshake
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

READ_SIZE = 1 << 20  # what one read may take from the kernel's buffer: a batch
PING_AFTER = 20.0
PONG_WITHIN = 20.0
CLOSE_TIMEOUT = 2.0  # for the server to end the connection once both sides sent a close frame
_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class Connection:
    """One open websocket connection. `recv_batch` and `close` may be called from different
    threads (close wakes a waiting `recv_batch`); nothing else is thread-safe."""

    def __init__(self, url: str, *, max_size: int, open_timeout: float = 10.0,
                 tls: ssl.SSLContext | None = None, headers: Mapping[str, str] | None = None,
                 subprotocols: Sequence[str] = ()) -> None:
        uri = parse_uri(url)
        self.protocol = ClientProtocol(uri, max_size=max_size, subprotocols=[
            Subprotocol(p) for p in subprotocols] or None)
        self._headers = dict(headers or {})
        self.sock = socket.create_connection((uri.host, uri.port), timeout=open_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if uri.secure:  # wss://, verified against the system's CAs unless told otherwise
            tls = tls or ssl.create_default_context()
            self.sock = tls.wrap_socket(self.sock, server_hostname=uri.host)
        self._fragments: list[bytes] = []
        self._pending: list[bytes] = []
        self._heard = time.monotonic()
        self._pinged = False
        try:
            self._handshake(open_timeout)
        except BaseException:
            self.sock.close()
            raise

    def _handshake(self, timeout: float) -> None:
        request = self.protocol.connect()
        for name, value in self._headers.items():
            request.headers[name] = value
        self.protocol.send_request(request)
        self._flush()
        deadline = time.monotonic() + timeout
        events: list[Event] = []
        while not events:  # the first event is the server's response
            data = self._read(deadline - time.monotonic())
            if data is None:
                raise TimeoutError(f"no websocket handshake within {timeout:.0f} s")
            if not data:
                raise InvalidHandshake("the server closed the connection during the handshake")
            self.protocol.receive_data(data)
            events = self.protocol.events_received()
        if self.protocol.handshake_exc is not None:
            raise self.protocol.handshake_exc
        self._pending = self._messages(events[1:])  # messages sent along with the response

    def recv_batch(self, timeout: float) -> list[bytes]:
        """The messages received so far, waiting up to `timeout` seconds for at least one ([] if
        none came). Raises ConnectionClosed once the connection has ended and every message
        received before the end was returned."""
        messages, self._pending = self._pending, []
        deadline = time.monotonic() + timeout
        while not messages:
            if self.protocol.state is State.CLOSED:
                raise self.protocol.close_exc
            data = self._read(deadline - time.monotonic())
            if data is None:
                self._keepalive()
                return []
            if data:
                self.protocol.receive_data(data)
            else:  # the end of the stream, a reset, or `close` from another thread
                self.protocol.receive_eof()
            self._flush()  # pongs, the answer to a close
            messages = self._messages(self.protocol.events_received())
        return messages

    def _read(self, timeout: float) -> bytes | None:
        """Bytes from the socket, b"" at the end of the stream, None on a timeout."""
        if timeout <= 0:
            return None
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(READ_SIZE)
        except TimeoutError:
            return None
        except OSError:  # reset, or closed by `close` from another thread
            return b""
        self._heard, self._pinged = time.monotonic(), False
        return data

    def _messages(self, events: list[Event]) -> list[bytes]:
        """The data messages among received frames, fragmented ones joined (control frames are
        the protocol's business)."""
        out = []
        for frame in events:
            if isinstance(frame, Frame) and frame.opcode in _DATA:
                if frame.fin and not self._fragments:
                    out.append(bytes(frame.data))
                elif frame.fin:
                    out.append(b"".join(self._fragments) + frame.data)
                    self._fragments = []
                else:
                    self._fragments.append(bytes(frame.data))
        return out

    def _keepalive(self) -> None:
        """Ping a silent server, give up on one that does not answer or does not end a closing
        connection."""
        silent = time.monotonic() - self._heard
        if self.protocol.state is State.CLOSING and silent > CLOSE_TIMEOUT:
            self.close()
            self.protocol.receive_eof()
            raise self.protocol.close_exc
        if silent > PING_AFTER + PONG_WITHIN and self._pinged:
            self.close()
            raise ConnectionClosedError(None, None)  # as the websockets clients say it
        if silent > PING_AFTER and not self._pinged:
            self.protocol.send_ping(b"numpolville")
            self._flush()
            self._pinged = True

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            try:
                if data:
                    self.sock.sendall(data)
                else:  # the protocol asks to half-close
                    self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                return  # the read side will see the end

    def close(self) -> None:
        """Close the connection (from any thread): a waiting `recv_batch` returns or raises."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
