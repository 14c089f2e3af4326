"""HTTP API clients for services the operations configure (NGINX Proxy Manager, Pi-hole v6).

They take a base URL: how that URL is reached (an SSH tunnel, a direct address) is the caller's
choice. Secrets are accepted as plain strings or objects with ``get_secret_value()`` (pydantic's
``SecretStr``) and never appear in a repr, an exception or a log line.
"""

from __future__ import annotations

from typing import Any, Protocol


class ServiceUnreachable(Exception):  # noqa: N818 (a state, as pyinfra names its own)
    """The service's API does not answer: nothing listens, the container is down, no tunnel. The
    clients raise it (or a subclass) for a refused or dropped connection and a timeout."""


class SecretLike(Protocol):
    def get_secret_value(self) -> str: ...


Secret = str | SecretLike


def reveal(secret: Secret) -> str:
    """The plain value of a secret given as a string or a ``SecretStr``-like object."""
    return secret if isinstance(secret, str) else secret.get_secret_value()


def redact(text: str, *secrets: str) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def read_while_planning(read: Any, executing: bool) -> tuple[bool, Any]:
    """Run ``read()``; while planning (not executing), an API that does not answer yet (its service
    is started by an earlier operation of the same run) gives ``(False, None)`` instead of failing.
    """
    try:
        return True, read()
    except Exception as error:  # the clients raise their own errors; the factory may raise others
        if executing or not _unreachable(error):
            raise
        return False, None


def _unreachable(error: BaseException) -> bool:
    return isinstance(error, ServiceUnreachable)
