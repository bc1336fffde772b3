"""The workspace signing key: Ed25519, created on first use, readable only by its owner.

The private key lives in ``<workspace>/keys/signing-ed25519.pem`` (PKCS #8, mode 0600, folder
0700); the public key beside it in ``signing-ed25519.pub``. A key file that other users can read is
refused, as ssh does. Anyone can check a signature with the public key alone; its fingerprint
(``SHA256:`` and the unpadded base64 of the SHA-256 of the 32 raw key bytes) is what an auditor
publishes so that others can tell the key is theirs.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.errors import InputError, RuntimeFailure

__all__ = [
    "KEY_FILE",
    "SigningKey",
    "fingerprint",
    "signature_valid",
    "workspace_key",
]

KEY_DIR = "keys"
KEY_FILE = "signing-ed25519.pem"
PUBLIC_FILE = "signing-ed25519.pub"
ALGORITHM = "ed25519"


def fingerprint(public_raw: bytes) -> str:
    """``SHA256:<base64>`` of the raw public key, in the style of OpenSSH fingerprints."""
    digest = hashlib.sha256(public_raw).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def signature_valid(public_raw: bytes, signature: bytes, message: bytes) -> bool:
    """True if ``signature`` is the Ed25519 signature of ``message`` by this public key."""
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    path: Path | None = None

    @property
    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_raw)

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _check_private(path: Path) -> None:
    if os.name == "nt":
        return
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise InputError(
            f"the signing key is readable by other users (mode {mode:04o}); run: chmod 600 {path}",
            source=path,
        )


def _load(path: Path) -> SigningKey:
    _check_private(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"the signing key cannot be read ({exc})", source=path) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError("the signing key must be an Ed25519 private key", source=path)
    return SigningKey(key, path)


def _create(folder: Path, path: Path) -> SigningKey:
    """Write a new key atomically: a private temporary file, then a hard link that fails if
    another process created the key first (then that key is used)."""
    key = Ed25519PrivateKey.generate()
    tmp = folder / f".{KEY_FILE}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(_private_pem(key))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _load(path)
    finally:
        tmp.unlink(missing_ok=True)
    signing = SigningKey(key, path)
    public = serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    text = key.public_key().public_bytes(*public).decode("ascii")
    (folder / PUBLIC_FILE).write_text(f"{text} platform-audit {signing.fingerprint}\n", "ascii")
    return signing


def workspace_key(root: Path) -> SigningKey:
    """The workspace's signing key, created on first use."""
    folder = root / KEY_DIR
    path = folder / KEY_FILE
    if path.exists():
        return _load(path)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return _create(folder, path)
    except OSError as exc:
        raise RuntimeFailure(f"cannot create the signing key in {folder}: {exc.strerror}") from None
