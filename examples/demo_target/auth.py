"""Development tokens and caller identity for rate limiting.

Tokens are HMAC-signed user names rather than random keys in a table: verifying needs no
storage, so a load test minting a token per virtual user cannot grow the server's memory.
The secret is per process, so tokens die with the server, which is right for a dev token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

MAX_USER_LEN = 64


class TokenSigner:
    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    def _mac(self, user: str) -> str:
        return hmac.new(self._secret, user.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, user: str) -> str:
        encoded = base64.urlsafe_b64encode(user.encode()).decode().rstrip("=")
        return f"dev.{encoded}.{self._mac(user)}"

    def verify(self, token: str) -> str | None:
        """The user a token was issued to, or None if it is not one of ours."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != "dev":
            return None
        try:
            padded = parts[1] + "=" * (-len(parts[1]) % 4)
            user = base64.urlsafe_b64decode(padded.encode()).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        if not hmac.compare_digest(parts[2], self._mac(user)):
            return None
        return user


def valid_user(value: object) -> str | None:
    if isinstance(value, str) and 0 < len(value.strip()) <= MAX_USER_LEN:
        return value.strip()
    return None


def caller_identity(authorization: str | None, client_host: str | None, signer: TokenSigner) -> str:
    """Rate-limit key: the token's user when a valid bearer token is sent, else the client IP.

    The prefixes keep a user literally named "127.0.0.1" from sharing a bucket with that IP.
    """
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer":
            user = signer.verify(token.strip())
            if user is not None:
                return f"user:{user}"
    return f"ip:{client_host or 'unknown'}"
