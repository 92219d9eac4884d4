"""Service auth: the AppView passes on the token the viewer's PDS signed for this feed service.

The SDK's `verify_jwt_async` checks the signature against the issuer's key, `aud` and the time
claims; here also that `exp` is there at all and that `lxm`, when present, names getFeedSkeleton
(the SDK checks neither). The issuer's key comes from its DID document (the SDK's resolver) through
`KeyCache`: cached, and fetched again once when a signature fails (a rotated key), but not more
often than `min_refresh` seconds per DID, so bad tokens cannot make the server hammer the PLC.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from atproto_identity import exceptions as identity
from atproto_server.auth.jwt import verify_jwt_async
from atproto_server.exceptions import (
    AtProtocolError,
    TokenExpiredSignatureError,
    TokenImmatureSignatureError,
    TokenInvalidAudienceError,
    TokenInvalidSignatureError,
)
from httpx import HTTPError

from bot.feedgen.feeds import GET_SKELETON
from bot.feedgen.skeleton import XrpcError

log = logging.getLogger("numpolville.feedgen")
_UNRESOLVED = (identity.DidNotFoundError, identity.DidPlcResolverError, identity.DidWebResolverError,
               identity.PoorlyFormattedDidError, identity.PoorlyFormattedDidDocumentError,
               identity.UnsupportedDidMethodError, identity.UnsupportedDidWebPathError,
               identity.AtprotoDataParseError, HTTPError)

Resolve = Callable[[str, bool], Awaitable[str]]  # (did, force_refresh) -> did:key


class KeyCache:
    """Issuers' signing keys (did:key), at most `size` of them, each kept `ttl` seconds."""

    def __init__(self, resolve: Resolve, *, ttl: float = 3600, min_refresh: float = 30,
                 size: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.resolve, self.ttl, self.min_refresh, self.size, self.clock = (
            resolve, ttl, min_refresh, size, clock)
        self._keys: OrderedDict[str, tuple[str, float]] = OrderedDict()

    async def get(self, did: str, refresh: bool = False) -> str:
        """The key of `did`; `refresh` (a signature failed): fetch it again unless fetched within
        `min_refresh` seconds."""
        now = self.clock()
        cached = self._keys.get(did)
        if cached and now - cached[1] < (self.min_refresh if refresh else self.ttl):
            self._keys.move_to_end(did)
            return cached[0]
        key = await self.resolve(did, refresh)
        self._keys[did] = (key, now)
        self._keys.move_to_end(did)
        while len(self._keys) > self.size:
            self._keys.popitem(last=False)
        return key


def sdk_resolver(plc_directory: str, timeout: float = 3.0) -> Resolve:
    """The SDK's DID resolver (did:plc through `plc_directory`, did:web over HTTPS), uncached:
    `KeyCache` is the cache."""
    from atproto_identity.resolver import AsyncIdResolver

    resolver = AsyncIdResolver(plc_url=plc_directory, timeout=timeout)
    return resolver.did.resolve_atproto_key


class ServiceAuth:
    def __init__(self, service_did: str, keys: KeyCache) -> None:
        self.service_did, self.keys = service_did, keys

    async def verify(self, authorization: str | None) -> str | None:
        """The issuer's DID of a valid token, None without one; a bad one raises a 401."""
        if authorization is None:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _refused("BadJwt", "the Authorization header must be `Bearer <JWT>`")
        try:
            payload = await verify_jwt_async(token.strip(), self.keys.get, self.service_did)
        except TokenInvalidAudienceError:
            raise _refused("BadJwtAudience", f"jwt audience is not {self.service_did}") from None
        except (TokenExpiredSignatureError, TokenImmatureSignatureError):
            raise _refused("JwtExpired", "jwt expired or not valid yet") from None
        except TokenInvalidSignatureError:
            raise _refused("BadJwtSignature", "jwt signature does not match the issuer's key") from None
        except _UNRESOLVED as e:
            log.info("feed token issuer not resolved: %s", type(e).__name__)
            raise _refused("BadJwtIssuer", "could not resolve the jwt issuer's key") from None
        except (AtProtocolError, ValueError):
            raise _refused("BadJwt", "malformed jwt") from None
        if payload.exp is None:
            raise _refused("BadJwt", "jwt has no expiry (exp)")
        lxm = (payload.model_extra or {}).get("lxm")
        if lxm is not None and lxm != GET_SKELETON:
            raise _refused("BadJwtLexiconMethod", f"jwt lxm is not {GET_SKELETON}")
        return payload.iss


def _refused(error: str, message: str) -> XrpcError:
    return XrpcError(401, error, message)
