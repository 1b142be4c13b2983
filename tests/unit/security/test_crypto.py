"""National cryptography: SM3 against the standard's vector, SM4-GCM tamper detection."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from kuaishu.security.crypto import KeyRing, sm3_hex, sm4_gcm_decrypt, sm4_gcm_encrypt


def test_sm3_matches_the_standard_example() -> None:
    # GB/T 32905-2016, example 1: SM3("abc").
    assert sm3_hex(b"abc") == ("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")


def test_sm4_gcm_round_trip_and_tamper_detection() -> None:
    key = bytes(range(16))
    blob = sm4_gcm_encrypt(key, "公民身份号码".encode(), b"purpose")
    assert sm4_gcm_decrypt(key, blob, b"purpose").decode() == "公民身份号码"
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(InvalidTag):
        sm4_gcm_decrypt(key, tampered, b"purpose")
    with pytest.raises(InvalidTag):
        sm4_gcm_decrypt(key, blob, b"another purpose")


def test_keyring_keys_differ_by_purpose_and_digests_are_stable() -> None:
    ring = KeyRing(b"k" * 32)
    assert ring.key("a") != ring.key("b")
    assert ring.digest("id", "x") == ring.digest("id", "x") != ring.digest("id", "y")
    token = ring.encrypt_text("id", "110105")
    assert "110105" not in token and ring.decrypt_text("id", token) == "110105"
    with pytest.raises(InvalidTag):
        ring.decrypt_text("other", token)
