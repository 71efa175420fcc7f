"""Keys and certificates: our key pairs (they sign and decrypt), and the certificates we trust or publish.

The xmlsec forms of keys are made once and kept (`functools.lru_cache`): loading a
key into xmlsec costs more than the operation it is used for.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"


@dataclass(frozen=True)
class Certificate:
    """A trusted or published X.509 certificate (only its public key matters for SAML)."""

    der: bytes
    cert: x509.Certificate = field(repr=False, compare=False)

    @classmethod
    def from_pem(cls, pem: bytes) -> Certificate:
        cert = x509.load_pem_x509_certificate(pem)
        return cls(cert.public_bytes(serialization.Encoding.DER), cert)

    @classmethod
    def from_base64(cls, text: str) -> Certificate:
        der = base64.b64decode("".join(text.split()), validate=True)
        return cls(der, x509.load_der_x509_certificate(der))

    @property
    def base64(self) -> str:
        return base64.b64encode(self.der).decode()

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.der).hexdigest()

    @property
    def not_after(self) -> datetime:
        return self.cert.not_valid_after_utc

    def xmlsec_key(self) -> xmlsec.Key:
        """The public key with its certificate for xmlsec (encryption to it), loaded once."""
        return _xmlsec_key(self.der)

    def verification_key(self) -> xmlsec.Key:
        """The bare public key for xmlsec signature checks, loaded once. A context keeps its own copy of the
        key it is given: copying one that carries its certificate costs ~20 µs (the X.509 is copied too),
        the bare key almost nothing; the certificate plays no part in checking a signature."""
        return _xmlsec_public_key(self.der)


@functools.lru_cache(maxsize=256)
def _xmlsec_key(der: bytes) -> xmlsec.Key:
    return xmlsec.Key.from_memory(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM),
                                  xmlsec.constants.KeyDataFormatCertPem, None)


@functools.lru_cache(maxsize=256)
def _xmlsec_public_key(der: bytes) -> xmlsec.Key:
    public = x509.load_der_x509_certificate(der).public_key()
    return xmlsec.Key.from_memory(public.public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo),
                                  xmlsec.constants.KeyDataFormatPem, None)


@functools.lru_cache(maxsize=64)
def xmlsec_private_key(pair: KeyPair) -> xmlsec.Key:
    """Our private key for xmlsec, loaded once (an encryption context keeps its own copy of it)."""
    return xmlsec.Key.from_memory(pair.private_pem, xmlsec.constants.KeyDataFormatPem, None)


@dataclass(frozen=True)
class KeyPair:
    """One of our key pairs: a private key and the certificate published for it in our metadata."""

    id: str
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = field(repr=False, compare=False)
    certificate: Certificate
    signing: bool = True
    encryption: bool = True

    @classmethod
    def load(cls, key_id: str, key_file: Path, cert_file: Path, *, signing: bool = True,
             encryption: bool = True) -> KeyPair:
        """Read a PEM private key (unencrypted) and its certificate; raises ValueError naming what is wrong."""
        try:
            private = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"key_file {key_file}: cannot read an unencrypted PEM private key ({exc})") from None
        try:
            cert = Certificate.from_pem(Path(cert_file).read_bytes())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cert_file {cert_file}: cannot read a PEM certificate ({exc})") from None
        if not isinstance(private, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise ValueError(f"key_file {key_file}: only RSA and EC keys are supported")
        public = cert.cert.public_key()
        if not isinstance(public, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)) \
                or private.public_key().public_numbers() != public.public_numbers():
            raise ValueError(f"key_file {key_file} and cert_file {cert_file} do not belong together")
        return cls(key_id, private, cert, signing, encryption)

    @property
    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())

    @property
    def signature_method(self) -> str:
        return RSA_SHA256 if isinstance(self.private_key, rsa.RSAPrivateKey) else ECDSA_SHA256

    def sign_bytes(self, data: bytes) -> bytes:
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))
