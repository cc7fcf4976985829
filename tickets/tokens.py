"""Link tokens: random, kept only as a SHA-256 hash, and checked for shape before any query."""

import hashlib
import re

TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,128}$")


def verification_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_hash_if_wellformed(token: object) -> str | None:
    """The stored hash of `token`, or None when it cannot be one of our tokens (no query then)."""
    if not isinstance(token, str) or not TOKEN_SHAPE.match(token):
        return None
    return verification_token_hash(token)
