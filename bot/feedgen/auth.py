"""Service auth: the AppView passes on the token the viewer's PDS signed for this feed service.

The SDK parses the token and checks its time claims (`parse_jwt`, `validate_jwt_payload`); here
also `aud`, that `exp` is there at all and that `lxm`, when present, names getFeedSkeleton (the SDK
checks neither). The signature is checked against the issuer's key from its DID document (the
SDK's resolver) through `KeyCache`: cached, and fetched again once when a signature fails (a rotated
key), but not more often than `min_refresh` seconds per DID, so bad tokens cannot make the server
hammer the PLC. Account keys are secp256k1: libsecp256k1 (coincurve) checks one in about 60 µs
where the SDK's `verify_signature` (OpenSSL, the key decoded on every call) takes about 900 µs;
P-256 keys go through the SDK's own algorithm.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import lru_cache

from atproto_crypto.algs import ALGORITHM_TO_CLASS
from atproto_crypto.consts import SECP256K1_JWT_ALG
from atproto_crypto.did import parse_did_key
from atproto_identity import exceptions as identity
from atproto_server.auth.jwt import decode_jwt_payload, parse_jwt, validate_jwt_payload
from atproto_server.exceptions import (
    AtProtocolError,
    TokenExpiredSignatureError,
    TokenImmatureSignatureError,
)
from coincurve import PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
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
        self._pending: dict[str, asyncio.Future[str]] = {}

    async def get(self, did: str, refresh: bool = False) -> str:
        """The key of `did`; `refresh` (a signature failed): fetch it again unless fetched within
        `min_refresh` seconds."""
        now = self.clock()
        cached = self._keys.get(did)
        if cached and now - cached[1] < (self.min_refresh if refresh else self.ttl):
            self._keys.move_to_end(did)
            return cached[0]
        task = self._pending.get(did)  # requests arriving together wait for the same fetch
        if task is None:
            task = self._pending[did] = asyncio.ensure_future(self.resolve(did, refresh))
            task.add_done_callback(lambda _, d=did: self._pending.pop(d, None))  # type: ignore[misc]
        key = await task
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
            payload_bytes, signing_input, _, signature = parse_jwt(token.strip())
            payload = decode_jwt_payload(payload_bytes)
            validate_jwt_payload(payload)
        except (TokenExpiredSignatureError, TokenImmatureSignatureError):
            raise _refused("JwtExpired", "jwt expired or not valid yet") from None
        except (AtProtocolError, ValueError):
            raise _refused("BadJwt", "malformed jwt") from None
        if payload.aud != self.service_did:
            raise _refused("BadJwtAudience", f"jwt audience is not {self.service_did}")
        if payload.exp is None or not payload.iss:
            raise _refused("BadJwt", "jwt has no expiry (exp) or no issuer (iss)")
        lxm = (payload.model_extra or {}).get("lxm")
        if lxm is not None and lxm != GET_SKELETON:
            raise _refused("BadJwtLexiconMethod", f"jwt lxm is not {GET_SKELETON}")
        try:
            key = await self.keys.get(payload.iss)
            if not verified(key, signing_input, signature):
                fresh = await self.keys.get(payload.iss, refresh=True)  # the key may have rotated
                if fresh == key or not verified(fresh, signing_input, signature):
                    raise _refused("BadJwtSignature", "jwt signature does not match the issuer's key")
        except _UNRESOLVED as e:
            log.info("feed token issuer not resolved: %s", type(e).__name__)
            raise _refused("BadJwtIssuer", "could not resolve the jwt issuer's key") from None
        return payload.iss


def verified(did_key: str, signing_input: bytes, signature: bytes) -> bool:
    """A compact (r || s) ECDSA signature, low-S only (atproto refuses the malleable twin)."""
    if len(signature) != 64:
        return False
    try:
        alg, key = _public_key(did_key)
    except (AtProtocolError, ValueError):
        return False
    if alg != SECP256K1_JWT_ALG:
        try:
            return bool(ALGORITHM_TO_CLASS[alg]().verify_signature(key, signing_input, signature))
        except Exception:  # noqa: BLE001 - a high-S or malformed signature: not valid
            return False
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:  # libsecp256k1 accepts lower-S signatures only
        return bool(PublicKey(key).verify(der, signing_input))
    except (ValueError, TypeError):
        return False


@lru_cache(maxsize=10_000)
def _public_key(did_key: str) -> tuple[str, bytes]:
    """The algorithm and compressed public key of a did:key (parsed once per key)."""
    parsed = parse_did_key(did_key)
    if parsed.jwt_alg not in ALGORITHM_TO_CLASS:
        raise ValueError(f"unsupported key type {parsed.jwt_alg}")
    return parsed.jwt_alg, parsed.key_bytes


def _refused(error: str, message: str) -> XrpcError:
    return XrpcError(401, error, message)
