"""Key storage of the signing server simulator: keys at indexes 1..60000 in one SQLite file (WAL).

Every private or symmetric key is kept SM4-GCM encrypted under the device master key (`<var>/signer/master-key`,
0600), with the key's index and algorithm as additional data, so a blob moved to another index does not decrypt.
Decrypted keys are cached in memory (a small LRU) because loading a PKCS#8 key costs more than signing with it.
"""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from core.crypto import SM2PrivateKey, generate_rsa_key, sm4_gcm_decrypt, sm4_gcm_encrypt
from core.secrets_file import read_or_create

KeyAlgorithm = Literal["SM2", "RSA2048", "RSA3072", "EC-P256", "SM4", "AES128", "AES256"]
ASYMMETRIC = ("SM2", "RSA2048", "RSA3072", "EC-P256")
SYMMETRIC_LEN = {"SM4": 16, "AES128": 16, "AES256": 32}
MIN_INDEX = 1
MAX_INDEX = 60_000
CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class StoredKey:
    index: int
    algorithm: str
    created_at: str
    public_der: bytes | None  # SubjectPublicKeyInfo for asymmetric keys
    secret: Any  # SM2PrivateKey, rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey (P-256), or bytes for symmetric keys


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def make_key(algorithm: str) -> tuple[bytes | None, bytes, Any]:
    """A fresh key: (SPKI or None, the plaintext to store, the loaded secret)."""
    if algorithm == "SM2":
        sm2 = SM2PrivateKey.generate()
        return sm2.public_key().to_der(), sm2.to_der(), sm2
    if algorithm in ("RSA2048", "RSA3072", "EC-P256"):
        rk: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
            ec.generate_private_key(ec.SECP256R1()) if algorithm == "EC-P256" else generate_rsa_key(int(algorithm[3:]))
        )
        spki = rk.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        pkcs8 = rk.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return spki, pkcs8, rk
    raw = secrets.token_bytes(SYMMETRIC_LEN[algorithm])
    return None, raw, raw


def _load_secret(algorithm: str, plain: bytes) -> Any:
    if algorithm == "SM2":
        return SM2PrivateKey.from_der(plain)
    if algorithm in ("RSA2048", "RSA3072", "EC-P256"):
        key = serialization.load_der_private_key(plain, password=None)
        assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        return key
    return plain


def _aad(index: int, algorithm: str) -> bytes:
    return f"szt-signer-key:{index}:{algorithm}".encode()


class KeyStore:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.master = bytes.fromhex(read_or_create(directory / "master-key", lambda: secrets.token_hex(16)))
        path = directory / "keys.sqlite"
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        path.chmod(0o600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS keys (idx INTEGER PRIMARY KEY, algorithm TEXT NOT NULL,"
            " created_at TEXT NOT NULL, public_der BLOB, sealed BLOB NOT NULL)"
        )
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, StoredKey] = OrderedDict()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _seal(self, index: int, algorithm: str, plain: bytes) -> bytes:
        return sm4_gcm_encrypt(self.master, plain, _aad(index, algorithm))

    def get(self, index: int) -> StoredKey | None:
        with self._lock:
            hit = self._cache.get(index)
            if hit is not None:
                self._cache.move_to_end(index)
                return hit
            row = self._db.execute(
                "SELECT algorithm, created_at, public_der, sealed FROM keys WHERE idx = ?", (index,)
            ).fetchone()
        if row is None:
            return None
        algorithm, created_at, public_der, sealed = row
        secret = _load_secret(algorithm, sm4_gcm_decrypt(self.master, sealed, _aad(index, algorithm)))
        key = StoredKey(index, algorithm, created_at, public_der, secret)
        with self._lock:
            self._cache[index] = key
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return key

    def exists(self, index: int) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM keys WHERE idx = ?", (index,)).fetchone() is not None

    def create(self, index: int, algorithm: str) -> StoredKey | None:
        """Generate and store a key; None when the index is already taken (nothing is changed then)."""
        spki, plain, secret = make_key(algorithm)
        created = _now()
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO keys (idx, algorithm, created_at, public_der, sealed) VALUES (?, ?, ?, ?, ?)",
                (index, algorithm, created, spki, self._seal(index, algorithm, plain)),
            )
            if cur.rowcount != 1:
                return None
            self._cache.pop(index, None)
        return StoredKey(index, algorithm, created, spki, secret)

    def create_range(self, first: int, last: int, algorithm: str) -> tuple[int, int, float]:
        """Generate keys at every free index of [first, last]; (generated, skipped, seconds)."""
        start = time.perf_counter()
        with self._lock:
            taken = {r[0] for r in self._db.execute("SELECT idx FROM keys WHERE idx BETWEEN ? AND ?", (first, last))}
        generated = 0
        batch: list[tuple[int, str, str, bytes | None, bytes]] = []

        def flush() -> None:
            nonlocal generated
            with self._lock:
                self._db.execute("BEGIN")
                try:
                    for row in batch:
                        cur = self._db.execute(
                            "INSERT OR IGNORE INTO keys (idx, algorithm, created_at, public_der, sealed)"
                            " VALUES (?, ?, ?, ?, ?)",
                            row,
                        )
                        generated += cur.rowcount
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            batch.clear()

        created = _now()
        for index in range(first, last + 1):
            if index in taken:
                continue
            spki, plain, _ = make_key(algorithm)
            batch.append((index, algorithm, created, spki, self._seal(index, algorithm, plain)))
            if len(batch) >= 1000:
                flush()
        if batch:
            flush()
        total = last - first + 1
        return generated, total - generated, time.perf_counter() - start

    def delete(self, index: int) -> bool:
        with self._lock:
            self._cache.pop(index, None)
            return self._db.execute("DELETE FROM keys WHERE idx = ?", (index,)).rowcount == 1

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT algorithm, count(*) FROM keys GROUP BY algorithm").fetchall()
        return {str(a): int(n) for a, n in rows}
