"""The server's own secret: signs development staff tokens and device tokens, encrypts supplier secrets and the
tags' Bluetooth keys (each purpose under its own derived key)."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from api.platform.settings import Settings


def server_key(settings: Settings) -> bytes:
    """32 bytes from ``AFSTAND_SECRET_KEY`` (hex) or, in development, from a file created in the data dir."""
    if settings.secret_key:
        key = bytes.fromhex(settings.secret_key)
        if len(key) < 32:
            raise ValueError("AFSTAND_SECRET_KEY must be at least 32 bytes of hex")
        return key
    path = Path(settings.data_dir) / "server.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def derive(key: bytes, purpose: str) -> bytes:
    """One key per purpose, so a token key can never decrypt a supplier secret."""
    return hashlib.sha256(key + b"/" + purpose.encode()).digest()


SUPPLIER_SECRETS = "supplier-secrets"
BLE_KEYS = "ble-keys"


def encrypt(key: bytes, plaintext: str, purpose: str = SUPPLIER_SECRETS) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(derive(key, purpose)).encrypt(nonce, plaintext.encode(), None)


def decrypt(key: bytes, blob: bytes, purpose: str = SUPPLIER_SECRETS) -> str:
    return AESGCM(derive(key, purpose)).decrypt(blob[:12], blob[12:], None).decode()


def token_hash(token: str) -> str:
    """Refresh tokens and enrollment secrets are random and long, so a plain SHA-256 suffices."""
    return hashlib.sha256(token.encode()).hexdigest()
