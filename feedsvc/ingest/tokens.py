"""The ingest API's bearer tokens: kept in the config only as hashes, each under a name.

The hash is SHA-256 of the token, not a slow password KDF (scrypt, Argon2): a token is a
random secret of at least MIN_TOKEN_LENGTH characters (`secrets.token_urlsafe(32)`: 256 bits),
which no guessing reaches however fast each guess is, whereas a KDF tuned to slow an attacker
down would cost every API call the same ~100 ms of CPU (the freshness budget is 200 ms) and
hand anyone who sends bad tokens a way to load the web processes. A password chosen by a person
would need the KDF: `feedsvc api hash-token` refuses short tokens for that reason.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from feedsvc.config import ApiToken

MIN_TOKEN_LENGTH = 32
_PREFIX = "sha256:"


class WeakToken(ValueError):
    """A token too short to be a random secret."""


def hash_token(token: str) -> str:
    """The config's form of `token`: "sha256:" and the hex digest of its UTF-8 bytes."""
    if len(token) < MIN_TOKEN_LENGTH:
        raise WeakToken(f"the token is {len(token)} characters long; use a random one of at "
                        f"least {MIN_TOKEN_LENGTH} (python3 -c 'import secrets; "
                        "print(secrets.token_urlsafe(32))')")
    return _PREFIX + hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    """Which configured token, by name, a presented one is."""

    def __init__(self, tokens: Iterable[ApiToken]):
        self._digests = [(t.name, bytes.fromhex(t.hash.removeprefix(_PREFIX))) for t in tokens]

    def name_of(self, presented: str) -> str | None:
        """The name of the token `presented` is, or None. Every configured hash is compared,
        each in constant time, so the answer's timing tells nothing of which or how near."""
        digest = hashlib.sha256(presented.encode(errors="surrogatepass")).digest()
        found = None
        for name, expected in self._digests:
            if hmac.compare_digest(digest, expected):
                found = name
        return found
