"""The headers every answer of the site carries: a Content-Security-Policy without any script,
nosniff, no framing but for the pages meant to be embedded (/embed/...), no referrer."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# No script at all; the site's stylesheet and inline style attributes (the digest's, which must
# also work pasted into an e-mail) but no <style> element; forms only to the site itself; never
# inside a frame.
CSP = ("default-src 'none'; style-src 'self' 'unsafe-inline'; style-src-elem 'self'; "
       "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# The same, for the pages other sites may show in a frame.
EMBEDDABLE_CSP = CSP.replace("frame-ancestors 'none'", "frame-ancestors *")


class SecurityHeaders:
    """The same headers on every answer, errors and static files included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                framed = b"content-security-policy" in names  # a page's own (embeddable) policy
                message["headers"] = [*message.get("headers", []),
                                      *((k, v) for k, v in SECURITY_HEADERS if k not in names
                                        and not (framed and k == b"x-frame-options"))]
            await send(message)

        await self.app(scope, receive, send_with_headers)
