"""National cryptography (SM3 hash, SM4-GCM encryption) and the platform's master key.

``cryptography`` implements SM3 and SM4 natively; see docs/decisions/0005-national-cryptography-and-personal-data.md.
"""

from __future__ import annotations

import base64
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.hmac import HMAC

from kuaishu.settings import get_settings

_NONCE_BYTES = 12
_TAG_BYTES = 16


def sm3(data: bytes) -> bytes:
    """The SM3 digest of ``data``."""
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def sm3_hex(data: bytes) -> str:
    return sm3(data).hex()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """Keyed SM3 (HMAC), for lookups of secrets and for consistent pseudonyms."""
    mac = HMAC(key, hashes.SM3())
    mac.update(data)
    return mac.finalize()


def sm4_gcm_encrypt(key: bytes, plaintext: bytes, associated: bytes = b"") -> bytes:
    """Encrypt with SM4-GCM; the result is nonce ‖ ciphertext ‖ tag."""
    nonce = os.urandom(_NONCE_BYTES)
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(associated)
    body = encryptor.update(plaintext) + encryptor.finalize()
    return nonce + body + encryptor.tag


def sm4_gcm_decrypt(key: bytes, blob: bytes, associated: bytes = b"") -> bytes:
    """Decrypt what :func:`sm4_gcm_encrypt` produced; raises ``InvalidTag`` if it was altered."""
    nonce, body, tag = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:-_TAG_BYTES], blob[-_TAG_BYTES:]
    decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(associated)
    return decryptor.update(body) + decryptor.finalize()


def constant_time_equal(left: bytes, right: bytes) -> bool:
    return hmac.compare_digest(left, right)


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


class KeyRing:
    """Purpose-specific keys derived from one master key kept outside the database."""

    def __init__(self, master: bytes) -> None:
        if len(master) < 32:
            raise ValueError("master key must be at least 32 bytes")
        self._master = master

    def key(self, purpose: str, length: int = 16) -> bytes:
        """A stable key for ``purpose`` (SM4 keys are 16 bytes)."""
        return hmac_sm3(self._master, b"kuaishu:" + purpose.encode())[:length]

    def encrypt_text(self, purpose: str, text: str) -> str:
        blob = sm4_gcm_encrypt(self.key(purpose), text.encode(), purpose.encode())
        return base64.b64encode(blob).decode()

    def decrypt_text(self, purpose: str, token: str) -> str:
        blob = base64.b64decode(token)
        return sm4_gcm_decrypt(self.key(purpose), blob, purpose.encode()).decode()

    def digest(self, purpose: str, text: str) -> str:
        """A keyed, deterministic digest: equal inputs give equal digests, nothing more leaks."""
        return hmac_sm3(self.key(purpose, 32), text.encode()).hex()


def load_master_key(path: Path) -> bytes:
    """Read the master key, creating it (mode 0600) on first use."""
    if path.exists():
        return base64.b64decode(path.read_bytes().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64encode(key))
    return key


@lru_cache(maxsize=4)
def _keyring_for(path: str) -> KeyRing:
    return KeyRing(load_master_key(Path(path)))


def keyring() -> KeyRing:
    """The process keyring, from the configured master key file."""
    return _keyring_for(str(get_settings().resolved_secret_key_file.resolve()))
