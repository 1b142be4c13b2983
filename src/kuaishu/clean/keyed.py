"""Keyed masking — SM3 hash, pseudonyms, SM4-GCM encryption — as DuckDB functions over Arrow.

DuckDB cannot compute SM3 or SM4, so these run in Python, one call per batch of ~2,048 values:
each distinct value in the batch is processed once (``dictionary_encode``), and HMAC-SM3 starts
from a copy of a keyed state instead of re-keying per value. Keys come from the platform's key
ring, one purpose each, so a hash, a pseudonym and a ciphertext of a value cannot be linked.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC

from kuaishu.security.crypto import KeyRing, keyring, sm4_gcm_decrypt, sm4_gcm_encrypt

HASH_FUNCTION = "ks_mask_hash"
PSEUDONYM_FUNCTION = "ks_mask_pseudonym"
ENCRYPT_FUNCTION = "ks_mask_encrypt"
DECRYPT_FUNCTION = "ks_mask_decrypt"

HASH_PURPOSE = "mask-hash"
PSEUDONYM_PURPOSE = "mask-pseudonym"
MAP_PURPOSE = "mask-pseudonym-map"
ENCRYPT_PURPOSE = "mask-encrypt"

# 16 hex digits (64 bits): with 10 (40 bits) two of ten million distinct people would share a
# token about 45 times; with 16 the expected number of shared tokens is about one in 300,000.
PSEUDONYM_HEX = 16
PSEUDONYM_PREFIX = "P"
_NONCE = 12

Transform = Callable[[str], str]


def seed(purpose: str, *, ring: KeyRing | None = None) -> int:
    """A secret, stable 63-bit integer for ``purpose`` (shuffle order, noise, date shift)."""
    key = (ring or keyring()).key(purpose, 8)
    return int.from_bytes(key, "big") >> 1


class Keyed:
    """The keyed transforms of one key ring; keys are derived once, not per value."""

    def __init__(self, ring: KeyRing | None = None) -> None:
        self.ring = ring or keyring()
        self._hash_state = HMAC(self.ring.key(HASH_PURPOSE, 32), hashes.SM3())
        self._pseudonym_state = HMAC(self.ring.key(PSEUDONYM_PURPOSE, 32), hashes.SM3())
        self._encrypt_key = self.ring.key(ENCRYPT_PURPOSE)
        self._map_key = self.ring.key(MAP_PURPOSE)

    def hash(self, value: str) -> str:
        """HMAC-SM3 of the value, hex: equal values give equal hashes in every dataset."""
        mac = self._hash_state.copy()
        mac.update(value.encode())
        return mac.finalize().hex()

    def pseudonym(self, value: str) -> str:
        mac = self._pseudonym_state.copy()
        mac.update(value.encode())
        return PSEUDONYM_PREFIX + mac.finalize().hex()[:PSEUDONYM_HEX]

    def encrypt(self, value: str) -> str:
        """SM4-GCM with a fresh nonce; readable by :meth:`decrypt` and ``KeyRing.decrypt_text``."""
        blob = sm4_gcm_encrypt(self._encrypt_key, value.encode(), ENCRYPT_PURPOSE.encode())
        return base64.b64encode(blob).decode()

    def decrypt(self, token: str) -> str:
        """The value :meth:`encrypt` sealed; raises ``InvalidTag`` under any other key."""
        blob = base64.b64decode(token)
        return sm4_gcm_decrypt(self._encrypt_key, blob, ENCRYPT_PURPOSE.encode()).decode()

    def seal(self, token: str, value: str) -> str:
        """A pseudonym map record: the value sealed, bound to its token as associated data."""
        blob = sm4_gcm_encrypt(self._map_key, value.encode(), token.encode())
        return base64.b64encode(blob).decode()

    def unseal(self, token: str, sealed: str) -> str:
        return sm4_gcm_decrypt(self._map_key, base64.b64decode(sealed), token.encode()).decode()


def per_distinct(values: pa.Array | pa.ChunkedArray, transform: Transform) -> pa.Array:
    """``transform`` applied once per distinct non-NULL value of a batch; NULL stays NULL."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    encoded = pc.dictionary_encode(array)
    results = pa.array([transform(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return results.take(encoded.indices)


def register_udfs(
    con: duckdb.DuckDBPyConnection, *, ring: KeyRing | None = None, decrypt: bool = False
) -> Keyed:
    """Register the keyed masking functions on ``con``; decryption only when asked for, since
    reversing it needs the key permission (the caller checks it and records the audit event)."""
    keyed = Keyed(ring)
    functions: dict[str, Transform] = {
        HASH_FUNCTION: keyed.hash,
        PSEUDONYM_FUNCTION: keyed.pseudonym,
        ENCRYPT_FUNCTION: keyed.encrypt,
    }
    if decrypt:
        functions[DECRYPT_FUNCTION] = keyed.decrypt
    for name, transform in functions.items():
        _register(con, name, transform, side_effects=name == ENCRYPT_FUNCTION)
    return keyed


def _register(
    con: duckdb.DuckDBPyConnection, name: str, transform: Transform, *, side_effects: bool
) -> None:
    def batch(values: pa.Array | pa.ChunkedArray) -> pa.Array:
        return per_distinct(values, transform)

    # A random nonce makes encryption non-deterministic: side_effects stops DuckDB from
    # folding or caching it as if equal inputs gave equal outputs. The stubs want the UDF-type
    # enum, whose module moved between DuckDB 1.x and 2.x; the string is accepted by both.
    con.create_function(  # type: ignore[call-overload]
        name, batch, ["VARCHAR"], "VARCHAR", type="arrow", side_effects=side_effects
    )


# The pseudonym map: kept apart from the data, each record sealed --------------------------------

MAP_TABLE = "pseudonym"


def extend_pseudonym_map(
    path: Path, values: Iterable[str | None], *, ring: KeyRing | None = None
) -> int:
    """Add a sealed record to the map at ``path`` for each value not yet in it; returns how many
    were added. The map is a DuckDB file of (token, sealed value), never beside the data."""
    keyed = Keyed(ring)
    distinct = {v for v in values if v is not None}
    fresh = pa.table({"value": pa.array(sorted(distinct), pa.string())})
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {MAP_TABLE} (token VARCHAR PRIMARY KEY, sealed VARCHAR NOT NULL)"
        )
        _register(con, "ks_pseudonym", keyed.pseudonym, side_effects=False)
        con.register("fresh", fresh)
        tokens = con.execute(
            f"SELECT f.value, ks_pseudonym(f.value) AS token FROM fresh f "
            f"ANTI JOIN {MAP_TABLE} m ON m.token = ks_pseudonym(f.value)"
        ).fetchall()
        records = [(token, keyed.seal(token, value)) for value, token in tokens]
        if records:
            con.executemany(f"INSERT INTO {MAP_TABLE} VALUES (?, ?)", records)
    return len(records)


def lookup_pseudonyms(
    path: Path, tokens: Iterable[str], *, ring: KeyRing | None = None
) -> dict[str, str]:
    """Re-identification: the original value of each known token. The caller authorizes and
    audits it; without the key the map is unreadable."""
    keyed = Keyed(ring)
    wanted = sorted(set(tokens))
    if not wanted or not path.exists():
        return {}
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            f"SELECT token, sealed FROM {MAP_TABLE} WHERE token IN (SELECT unnest(?))", [wanted]
        ).fetchall()
    return {token: keyed.unseal(token, sealed) for token, sealed in rows}


def random_bytes(n: int) -> bytes:
    return os.urandom(n)
