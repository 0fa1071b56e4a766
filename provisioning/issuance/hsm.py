"""Issuer signing keys inside a PKCS#11 hardware security module (python-pkcs11; extra ``[hsm]``).

The key is generated in the token (sensitive, never extractable); the host only ever holds its
public half. :class:`HsmRsaKey` is a ``cryptography`` RSA private key whose ``sign`` runs
``CKM_SHA256_RSA_PKCS`` in the token, so credential minting (``credential.mint`` → ``cose.sign1``)
works unchanged with a file key or an HSM key. Everything a private key could leak
(``private_numbers``, ``private_bytes``, ``decrypt``) refuses. Key ceremony: docs/issuer-keys-hsm.md.

URI used on the command line: ``MODULE.so:TOKEN_LABEL:KEY_LABEL``; the user PIN comes from a file
(first line) or ``$CBCC_PKCS11_PIN``, never from the command line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from messages import _
from provisioning.errors import ProvisioningError


class HsmError(ProvisioningError):
    pass


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise HsmError(_("HSM support needs python-pkcs11: `uv sync --extra hsm`")) from None
    return pkcs11


def read_pin(pin_file: Path | None) -> str:
    if pin_file is not None:
        try:
            pin = pin_file.read_text(encoding="utf-8").split("\n", 1)[0].strip()
        except OSError as exc:
            raise HsmError(
                _("cannot read PIN file {path}: {reason}", path=pin_file, reason=exc.strerror)
            ) from None
    else:
        pin = os.environ.get("CBCC_PKCS11_PIN", "")
    if not pin:
        raise HsmError(_("no HSM user PIN (--pin-file or $CBCC_PKCS11_PIN)"))
    return pin


def parse_uri(uri: str) -> tuple[str, str, str]:
    parts = uri.rsplit(":", 2)
    if len(parts) != 3 or not all(parts):
        raise HsmError(_("PKCS#11 key {uri!r} is not MODULE.so:TOKEN_LABEL:KEY_LABEL", uri=uri))
    return parts[0], parts[1], parts[2]


def _session(module: str, token_label: str, pin: str) -> Any:
    p11 = _pkcs11()
    try:
        lib = p11.lib(module)
        token = lib.get_token(token_label=token_label)
        return token.open(user_pin=pin, rw=True)
    except p11.exceptions.NoSuchToken:
        raise HsmError(
            _("no token labelled {label!r} in {module}", label=token_label, module=module)
        ) from None
    except p11.exceptions.PinIncorrect:
        raise HsmError(_("the HSM refused the PIN")) from None
    except (p11.exceptions.PKCS11Error, RuntimeError, OSError) as exc:
        raise HsmError(
            _("cannot open the HSM token: {kind} {reason}", kind=type(exc).__name__, reason=exc)
        ) from None


class HsmRsaKey(rsa.RSAPrivateKey):
    """An RSA key held by a PKCS#11 token: signs there, exposes only its public key."""

    def __init__(self, session: Any, label: str) -> None:
        p11 = _pkcs11()
        self._session = session
        self.label = label
        try:
            self._priv = session.get_key(
                object_class=p11.ObjectClass.PRIVATE_KEY, key_type=p11.KeyType.RSA, label=label
            )
            pub = session.get_key(
                object_class=p11.ObjectClass.PUBLIC_KEY, key_type=p11.KeyType.RSA, label=label
            )
        except (p11.exceptions.NoSuchKey, p11.exceptions.MultipleObjectsReturned) as exc:
            raise HsmError(
                _(
                    "no single RSA key pair labelled {label!r} in the token ({kind})",
                    label=label,
                    kind=type(exc).__name__,
                )
            ) from None
        n = int.from_bytes(pub[p11.Attribute.MODULUS], "big")
        e = int.from_bytes(pub[p11.Attribute.PUBLIC_EXPONENT], "big")
        self._public = rsa.RSAPublicNumbers(e, n).public_key()
        self._mech = p11.Mechanism.SHA256_RSA_PKCS

    # -- what signing needs
    def sign(self, data: bytes, padding_: padding.AsymmetricPadding, algorithm: Any) -> bytes:
        if not isinstance(padding_, padding.PKCS1v15) or not isinstance(algorithm, hashes.SHA256):
            raise HsmError(_("the HSM issuer key signs RS256 (PKCS#1 v1.5 with SHA-256) only"))
        if isinstance(algorithm, Prehashed):
            raise HsmError(_("pre-hashed signing is not offered by the HSM key"))
        return bytes(self._priv.sign(data, mechanism=self._mech))

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def close(self) -> None:
        self._session.close()

    # -- what must never leave the token
    def _refuse(self) -> NoReturn:
        raise HsmError(_("the issuer key stays in the HSM"))

    def decrypt(self, ciphertext: bytes, padding_: padding.AsymmetricPadding) -> bytes:
        self._refuse()

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        self._refuse()

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:
        self._refuse()

    def __copy__(self) -> HsmRsaKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> HsmRsaKey:
        return self


def open_key(module: str, token_label: str, key_label: str, pin: str) -> HsmRsaKey:
    return HsmRsaKey(_session(module, token_label, pin), key_label)


def open_uri(uri: str, pin_file: Path | None) -> HsmRsaKey:
    module, token, label = parse_uri(uri)
    return open_key(module, token, label, read_pin(pin_file))


def generate(module: str, token_label: str, key_label: str, pin: str, bits: int = 2048) -> HsmRsaKey:
    """Generate an issuer RSA key pair in the token: private half sensitive and not extractable."""
    p11 = _pkcs11()
    if bits not in (2048, 3072):
        raise HsmError(_("issuer keys are RSA-2048 or RSA-3072"))
    session = _session(module, token_label, pin)
    try:
        session.get_key(object_class=p11.ObjectClass.PRIVATE_KEY, label=key_label)
    except p11.exceptions.NoSuchKey:
        pass
    except p11.exceptions.MultipleObjectsReturned:
        session.close()
        raise HsmError(_("the token already holds keys labelled {label!r}", label=key_label)) from None
    else:
        session.close()
        raise HsmError(
            _("the token already holds a key labelled {label!r}; refusing to add another", label=key_label)
        )
    attr = p11.Attribute
    session.generate_keypair(
        p11.KeyType.RSA,
        bits,
        label=key_label,
        store=True,
        public_template={attr.VERIFY: True, attr.ENCRYPT: False, attr.WRAP: False},
        private_template={
            attr.SIGN: True,
            attr.SENSITIVE: True,
            attr.EXTRACTABLE: False,
            attr.DECRYPT: False,
            attr.UNWRAP: False,
        },
    )
    return HsmRsaKey(session, key_label)
