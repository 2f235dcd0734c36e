"""Channel security and senders: the generic webhook's HMAC signatures, Feishu / Lark signature
checks and AES bodies, and the outbound senders (Feishu open API, webhook callbacks).

The cryptography package is imported only when an encrypted Feishu body is decrypted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import time
from typing import Any

__all__ = [
    "FeishuSender",
    "WebhookCallback",
    "feishu_decrypt",
    "feishu_encrypt",
    "feishu_signature",
    "sign_webhook",
    "verify_webhook",
]


def sign_webhook(secret: str, body: bytes, timestamp: str) -> str:
    """The `X-Signature` header value: `sha256=<hex HMAC-SHA256 of "<timestamp>." + body>`.

    The timestamp is inside the signed bytes, so a captured request cannot be replayed later
    with a fresh `X-Timestamp`.
    """
    signed = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify_webhook(
    secret: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    max_skew: float = 300.0,
    now: float | None = None,
) -> str | None:
    """None when the request is authentic and fresh, else what is wrong with it."""
    if not signature:
        return "missing X-Signature"
    if not timestamp:
        return "missing X-Timestamp"
    try:
        ts = float(timestamp)
    except ValueError:
        return "X-Timestamp is not a number of seconds"
    if not math.isfinite(ts):
        return "X-Timestamp is not a number of seconds"
    if abs((now if now is not None else time.time()) - ts) > max_skew:
        return f"X-Timestamp is more than {max_skew:g} s away from the server's clock"
    # As bytes: compare_digest refuses str with non-ASCII characters, which a header can hold.
    want = sign_webhook(secret, body, timestamp).encode()
    if not hmac.compare_digest(want, signature.encode("utf-8", "surrogatepass")):
        return "X-Signature does not match the timestamp and body"
    return None


def feishu_signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """Feishu's `X-Lark-Signature`: sha256 hex of timestamp + nonce + encrypt key + raw body."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def _cipher(key: str, iv: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError as e:
        from glm_agent.exceptions import MissingDependencyError

        raise MissingDependencyError("cryptography", "serve", "encrypted Feishu events") from e
    return Cipher(algorithms.AES(hashlib.sha256(key.encode()).digest()), modes.CBC(iv))


def feishu_decrypt(encrypt_key: str, encrypted: str) -> str:
    """Decrypt a Feishu `encrypt` field: AES-256-CBC, key sha256(encrypt key), IV first 16 bytes.

    Raises:
        ValueError: Not base64, not an IV and whole blocks, or bad padding (a wrong key).
    """
    raw = base64.b64decode(encrypted)
    if len(raw) < 32 or len(raw) % 16:
        raise ValueError("the encrypted body is not an IV and whole AES blocks")
    decryptor = _cipher(encrypt_key, raw[:16]).decryptor()
    padded = decryptor.update(raw[16:]) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= 16:
        raise ValueError("bad padding in the encrypted body (wrong encrypt key?)")
    text: str = padded[:-pad].decode()
    return text


def feishu_encrypt(encrypt_key: str, plaintext: str) -> str:
    """The inverse of `feishu_decrypt` (what Feishu does; used to test the decryption)."""
    iv = os.urandom(16)
    data = plaintext.encode()
    pad = 16 - len(data) % 16
    encryptor = _cipher(encrypt_key, iv).encryptor()
    body = encryptor.update(data + bytes([pad]) * pad) + encryptor.finalize()
    return base64.b64encode(iv + body).decode()


class FeishuSender:
    """Sends text messages to Feishu chats through the open API (tenant access token cached).

    Args:
        app_id: The app's id.
        app_secret: The app's secret.
        api_base: `https://open.feishu.cn`, `https://open.larksuite.com`, or a local stand-in.
    """

    def __init__(self, app_id: str, app_secret: str, api_base: str = "https://open.feishu.cn"):
        self.app_id, self.app_secret, self.api_base = app_id, app_secret, api_base.rstrip("/")
        self._token: tuple[str, float] | None = None

    async def _access_token(self, client: Any) -> str:
        if self._token is not None and self._token[1] > time.time() + 60:
            return self._token[0]
        r = await client.post(
            self.api_base + "/open-apis/auth/v3/tenant_access_token/internal",
            json={"app_id": self.app_id, "app_secret": self.app_secret},
        )
        r.raise_for_status()
        data = r.json()
        self._token = (data["tenant_access_token"], time.time() + float(data.get("expire", 7200)))
        return self._token[0]

    async def send_text(self, chat_id: str, text: str) -> None:
        """Post `text` to the chat `chat_id`."""
        import httpx

        async with httpx.AsyncClient(timeout=10.0) as client:
            token = await self._access_token(client)
            r = await client.post(
                self.api_base + "/open-apis/im/v1/messages",
                params={"receive_id_type": "chat_id"},
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "receive_id": chat_id,
                    "msg_type": "text",
                    "content": json.dumps({"text": text}, ensure_ascii=False),
                },
            )
            r.raise_for_status()


class WebhookCallback:
    """POSTs replies to the webhook caller's callback URL, signed like incoming requests."""

    def __init__(self, url: str, secret: str) -> None:
        self.url, self.secret = url, secret

    async def send(self, conversation_id: str, customer_id: str | None, text: str) -> None:
        """POST `{"conversation_id", "customer_id", "text"}` with X-Signature and X-Timestamp."""
        import httpx

        body = json.dumps(
            {"conversation_id": conversation_id, "customer_id": customer_id, "text": text},
            ensure_ascii=False,
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Timestamp": timestamp,
            "X-Signature": sign_webhook(self.secret, body, timestamp),
        }
        async with httpx.AsyncClient(timeout=10.0) as client:
            (await client.post(self.url, content=body, headers=headers)).raise_for_status()
