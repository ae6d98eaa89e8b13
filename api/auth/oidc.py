"""Staff identity through OpenID Connect: bearer JWTs signed by the configured issuer.

A token is accepted only when

* its header names an asymmetric algorithm we allow (RS256 or ES256; never ``none`` nor HS256, so nobody can
  sign with the public key as an HMAC secret) and a ``kid`` found in the issuer's JWKS;
* its signature verifies with that key, and the key's own type and ``alg`` fit the header;
* ``iss`` is exactly the configured issuer, ``aud`` contains the configured audience, ``exp`` is in the future
  and ``nbf`` / ``iat`` are not (with ``AFSTAND_OIDC_LEEWAY_S`` of clock skew);
* the roles claim (``AFSTAND_OIDC_ROLES_CLAIM``, a dotted path into the claims) names exactly one staff role.

The JWKS location comes from the issuer's discovery document. Keys are cached for ``AFSTAND_OIDC_JWKS_CACHE_S``;
a token with an unknown ``kid`` (the issuer rotated its keys) refetches the JWKS at once, but at most every
``AFSTAND_OIDC_JWKS_MIN_REFRESH_S``, so a flood of made-up ``kid``s cannot turn us into a load generator.

The verifier is synchronous (httpx) and thread-safe: FastAPI runs sync dependencies in its thread pool, and a
fetch happens only on a cache miss.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

ALLOWED_ALGORITHMS = ("RS256", "ES256")
_KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}


class TokenRejected(Exception):
    """The token is not acceptable; the message says why (safe to show the caller)."""


class NoRole(Exception):
    """The token is valid but names no (single) staff role."""


@dataclass(frozen=True)
class Identity:
    sub: str
    role: str
    claims: dict[str, Any]


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """``realm_access.roles`` → ``claims["realm_access"]["roles"]``; a claim whose own name contains dots wins."""
    if path in claims:
        return claims[path]
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def roles_from(value: Any, known: tuple[str, ...]) -> list[str]:
    """The known staff roles in a claim value: a string (space- or comma-separated) or a list of strings."""
    if isinstance(value, str):
        items = value.replace(",", " ").split()
    elif isinstance(value, list):
        items = [v for v in value if isinstance(v, str)]
    else:
        return []
    return sorted({r for r in items if r in known})


class OIDCVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str,
        roles_claim: str,
        known_roles: tuple[str, ...],
        *,
        cache_s: float = 3600.0,
        min_refresh_s: float = 10.0,
        leeway_s: int = 30,
        timeout_s: float = 5.0,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.roles_claim = roles_claim
        self.known_roles = known_roles
        self.cache_s = cache_s
        self.min_refresh_s = min_refresh_s
        self.leeway_s = leeway_s
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._jwks_uri: str | None = None
        self.fetches = 0  # JWKS fetches so far; tests and metrics read it

    # ------------------------------------------------------------ keys

    def _discover(self, client: httpx.Client) -> str:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = client.get(url).raise_for_status().json()
        if doc.get("issuer") != self.issuer:
            raise TokenRejected("the issuer's discovery document names a different issuer")
        jwks_uri = doc.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise TokenRejected("the issuer's discovery document has no jwks_uri")
        return jwks_uri

    def _fetch(self) -> None:
        with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as client:
            if self._jwks_uri is None:
                self._jwks_uri = self._discover(client)
            data = client.get(self._jwks_uri).raise_for_status().json()
        keys: dict[str, jwt.PyJWK] = {}
        for jwk in data.get("keys", []):
            kid = jwk.get("kid")
            if not isinstance(kid, str) or jwk.get("use", "sig") != "sig":
                continue
            alg = jwk.get("alg")
            if alg is not None and alg not in ALLOWED_ALGORITHMS:
                continue  # a key meant for another algorithm is never used
            try:
                keys[kid] = jwt.PyJWK(jwk, algorithm=alg or {"RSA": "RS256", "EC": "ES256"}.get(jwk.get("kty", "")))
            except jwt.PyJWTError:
                continue
        self._keys = keys
        self._fetched_at = time.monotonic()
        self.fetches += 1

    def key_for(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            now = time.monotonic()
            stale = self._fetched_at is None or now - self._fetched_at > self.cache_s
            unknown = kid not in self._keys
            may_refresh = self._fetched_at is None or now - self._fetched_at >= self.min_refresh_s
            if stale or (unknown and may_refresh):
                try:
                    self._fetch()
                except (httpx.HTTPError, ValueError) as e:
                    if not self._keys:
                        raise TokenRejected(f"the issuer's keys cannot be fetched ({type(e).__name__})") from None
            key = self._keys.get(kid)
        if key is None:
            raise TokenRejected("the token's signing key (kid) is not among the issuer's keys")
        return key

    # ------------------------------------------------------------ tokens

    def verify(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise TokenRejected(f"malformed token: {e}") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise TokenRejected(f"algorithm {alg!r} is not accepted; one of {', '.join(ALLOWED_ALGORITHMS)}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("the token names no signing key (kid)")
        key = self.key_for(kid)
        if key.key_type != _KEY_TYPES[alg] or (key.algorithm_name and key.algorithm_name != alg):
            raise TokenRejected("the token's algorithm does not fit its signing key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"], "verify_nbf": True, "verify_iat": True},
            )
        except jwt.PyJWTError as e:
            raise TokenRejected(str(e)) from None
        roles = roles_from(claim_at(claims, self.roles_claim), self.known_roles)
        if len(roles) != 1:
            raise NoRole(
                f"the token's {self.roles_claim} claim must name exactly one staff role of"
                f" {', '.join(self.known_roles)}; it names {len(roles)}"
            )
        return Identity(sub=str(claims["sub"]), role=roles[0], claims=claims)
