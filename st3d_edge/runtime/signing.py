"""Ed25519 signatures over a bundle's manifest, with the ``cryptography`` package.

A checksum catches accidents; a signature catches tampering. The manifest's canonical JSON
(:func:`canonical_json`, everything but the integrity fields) is signed, and since the
manifest holds the sha256 of every file, the signature covers the weights and engine too.

Keys are PEM files: a PKCS#8 private key (``st3d-edge keygen`` writes one, unencrypted, mode
0600) and its SubjectPublicKeyInfo public key. A signature entry names its key by
``key_id``, the first 16 hex digits of the sha256 of the raw public key, so a device that
trusts several keys knows which one to try.

Trust on the device: ``infer --trust PUBKEY`` (repeatable), and every ``*.pub`` file in the
trust folder (``$ST3D_EDGE_TRUST_DIR``, default ``~/.config/st3d-edge/trusted-keys``). When
any trusted key is configured, a bundle must carry a valid signature by one of them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from st3d_edge.errors import MissingExtraError, St3dError, file_error

TRUST_DIR_ENV = "ST3D_EDGE_TRUST_DIR"
INTEGRITY_FIELDS = ("manifest_sha256", "signatures")


def canonical_json(manifest: dict[str, Any]) -> bytes:
    """The bytes that are checksummed and signed: sorted keys, no spaces, no integrity fields."""
    body = {key: value for key, value in manifest.items() if key not in INTEGRITY_FIELDS}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.encode()


def manifest_digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(manifest)).hexdigest()


def _serialization() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        raise MissingExtraError("cryptography", "runtime", "needed to sign or verify bundles") from None
    return serialization


def _ed25519() -> Any:
    _serialization()
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519


def _raw_public(public_key: Any) -> bytes:
    serialization = _serialization()
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Any) -> str:
    return hashlib.sha256(_raw_public(public_key)).hexdigest()[:16]


def _load_key(path: str | Path, private: bool) -> Any:
    serialization, ed25519 = _serialization(), _ed25519()
    path = Path(path)
    what = "signing key" if private else "trusted key"
    try:
        data = path.read_bytes()
        key = (
            serialization.load_pem_private_key(data, None)
            if private
            else serialization.load_pem_public_key(data)
        )
    except OSError as exc:
        raise file_error(path, f"cannot read the {what} ({exc.strerror})") from None
    except (ValueError, TypeError) as exc:
        pem = "an unencrypted PEM private key" if private else "a PEM public key"
        raise file_error(path, f"not {pem} ({exc})".splitlines()[0]) from None
    wanted = ed25519.Ed25519PrivateKey if private else ed25519.Ed25519PublicKey
    if not isinstance(key, wanted):
        raise file_error(
            path, f"not an Ed25519 {'key' if private else 'public key'}; make one with `st3d-edge keygen`"
        )
    return key


def load_private_key(path: str | Path) -> Any:
    return _load_key(path, private=True)


def load_public_key(path: str | Path) -> Any:
    return _load_key(path, private=False)


def generate_keypair(private_path: str | Path, public_path: str | Path) -> str:
    """Write a new key pair (private key mode 0600); returns the key id."""
    from st3d_edge.io_utils import atomic_path, write_bytes_atomic

    serialization, ed25519 = _serialization(), _ed25519()
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with atomic_path(private_path, durable=True) as tmp:
        os.chmod(tmp, 0o600)  # before the key is in it: never readable by others, whatever the umask
        tmp.write_bytes(private)
    write_bytes_atomic(public_path, public, durable=True)
    return key_id(key.public_key())


def sign(manifest: dict[str, Any], private_key: Any) -> dict[str, str]:
    signature = private_key.sign(canonical_json(manifest))
    return {"key_id": key_id(private_key.public_key()), "ed25519": base64.b64encode(signature).decode()}


def default_trust_dir() -> Path:
    configured = os.environ.get(TRUST_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "st3d-edge" / "trusted-keys"


def trusted_keys(paths: list[Path] | None = None, trust_dir: Path | None = None) -> dict[str, Any]:
    """key id -> public key, from ``paths`` and the ``*.pub`` files of the trust folder."""
    folder = trust_dir if trust_dir is not None else default_trust_dir()
    files = list(paths or [])
    if folder.is_dir():
        files += sorted(folder.glob("*.pub"))
    keys = {}
    for path in files:
        key = load_public_key(path)
        keys[key_id(key)] = key
    return keys


def verify_signatures(manifest: dict[str, Any], keys: dict[str, Any], manifest_path: Path) -> str:
    """The id of a trusted key that signed ``manifest``; refuse an unsigned or mis-signed one."""
    from cryptography.exceptions import InvalidSignature

    entries = manifest.get("signatures") or []
    if not isinstance(entries, list) or not entries:
        raise file_error(manifest_path, "bundle is not signed, and this device only trusts signed bundles")
    body = canonical_json(manifest)
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("key_id") not in keys:
            continue
        try:
            keys[entry["key_id"]].verify(base64.b64decode(str(entry.get("ed25519", ""))), body)
        except (InvalidSignature, ValueError):
            raise file_error(
                manifest_path, f"signature by key {entry['key_id']} does not match the manifest (tampered)"
            ) from None
        return str(entry["key_id"])
    signers = ", ".join(str(e.get("key_id")) for e in entries if isinstance(e, dict))
    raise St3dError(f"{manifest_path}: signed by key(s) {signers or '?'}, none of which this device trusts")
