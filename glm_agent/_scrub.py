"""The one place secrets are taken out of error text.

Error messages travel: back to the model (a failed HTTP tool), into HTTP error bodies, logs and
the terminal. Whatever builds one from a URL, a connection string, an exception of a client
library or a response passes it through `scrub` first: URL user-info (`user:password@`),
credential-looking query parameters and `key=value` pairs, bearer tokens, and any secret the
caller knows (an API key from a tool's configuration) are replaced by `***`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["scrub"]

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/\s@]+)@")
_NAMED = re.compile(
    r"(?P<name>(?:api[_-]?key|access[_-]?token|token|secret|password|passwd|pwd|auth|"
    r"signature|sig|key)\s*[=:]\s*)(?P<value>[^\s&,;'\"}]+)",
    re.I,
)
_BEARER = re.compile(r"(?P<kind>\b(?:Bearer|Basic)\s+)(?P<value>[A-Za-z0-9._~+/=\-]{6,})", re.I)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with credentials replaced by `***` (see the module docstring).

    Args:
        text: An error message, a URL, a connection string.
        secrets: Values known to be secret (tokens, passwords); each is replaced wherever it
            appears (values shorter than 4 characters are left: they would mask ordinary text).
    """
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _USERINFO.sub(lambda m: m.group("scheme") + "***@", text)
    text = _NAMED.sub(lambda m: m.group("name") + "***", text)
    return _BEARER.sub(lambda m: m.group("kind") + "***", text)
