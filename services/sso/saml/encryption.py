"""XML Encryption: decrypting what the national IdPs send us, encrypting what we send resource platforms.

`decrypt` opens an EncryptedAssertion or EncryptedID with any of our keys (for
key rollover): key transport must be RSA-OAEP and the cipher AES (CBC or GCM;
3DES with `allow_legacy`); RSA PKCS#1 v1.5 key transport is always refused.
`encrypt` seals one of our signed assertions to a platform's certificate
(RSA-OAEP, and the AES cipher chosen for the platform, best first in `CIPHERS`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from copy import deepcopy

import xmlsec
from lxml import etree

from .keys import Certificate, KeyPair, xmlsec_private_key
from .xml import DS, NS, SAML, XENC, Refused

_KEY_TRANSPORT = {"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p", "http://www.w3.org/2009/xmlenc11#rsa-oaep"}
_BLOCK_CIPHERS = {f"http://www.w3.org/2001/04/xmlenc#aes{n}-cbc" for n in (128, 192, 256)} | {
    f"http://www.w3.org/2009/xmlenc11#aes{n}-gcm" for n in (128, 192, 256)}
_LEGACY_CIPHERS = {"http://www.w3.org/2001/04/xmlenc#tripledes-cbc"}  # only with allow_legacy


def decrypt(encrypted_parent: etree._Element, keys: Iterable[KeyPair], what: str, *,
            allow_legacy: bool = False) -> etree._Element:
    """Decrypt the `xenc:EncryptedData` of an EncryptedAssertion/EncryptedID with one of our keys.

    Returns the decrypted element (in a copy of the document; the original is untouched).
    Key transport must be RSA-OAEP and the cipher AES (CBC or GCM; 3DES with `allow_legacy`):
    RSA PKCS#1 v1.5 key transport is always refused.
    """
    data = encrypted_parent.findall(f"{XENC}EncryptedData")
    if len(data) != 1:
        raise Refused("decryption-failed", f"{what}: {len(data)} EncryptedData elements (1 expected)")
    enc = data[0]
    cipher = enc.find(f"{XENC}EncryptionMethod")
    ciphers = _BLOCK_CIPHERS | _LEGACY_CIPHERS if allow_legacy else _BLOCK_CIPHERS
    if cipher is None or cipher.get("Algorithm") not in ciphers:
        raise Refused("weak-algorithm", f"{what}: cipher {None if cipher is None else cipher.get('Algorithm')} "
                                        "is not accepted")
    if enc.find(f"{XENC}CipherData/{XENC}CipherReference") is not None:
        raise Refused("decryption-failed", f"{what}: CipherReference is not supported")
    encrypted_keys = enc.findall(f"{DS}KeyInfo/{XENC}EncryptedKey")
    for retrieval in enc.findall(f"{DS}KeyInfo/{DS}RetrievalMethod"):
        uri = retrieval.get("URI") or ""
        if not uri.startswith("#"):
            raise Refused("decryption-failed", f"{what}: only local RetrievalMethod references are accepted")
        encrypted_keys += [k for k in encrypted_parent.findall(f"{XENC}EncryptedKey") if k.get("Id") == uri[1:]]
    if not encrypted_keys:
        raise Refused("decryption-failed", f"{what}: no EncryptedKey for us")
    for ek in encrypted_keys:
        method = ek.find(f"{XENC}EncryptionMethod")
        if method is None or method.get("Algorithm") not in _KEY_TRANSPORT:
            raise Refused("weak-algorithm", f"{what}: key transport "
                                            f"{None if method is None else method.get('Algorithm')} is not accepted")
    legacy_cipher = cipher.get("Algorithm") in _LEGACY_CIPHERS
    for key in keys:
        if key.encryption:
            for ek in encrypted_keys:
                result = _decrypt_with(key, ek, encrypted_parent, legacy_cipher)
                if result is not None:
                    return result
    raise Refused("decryption-failed", f"{what}: none of our keys decrypts it")


def _decrypt_with(key: KeyPair, encrypted_key: etree._Element, encrypted_parent: etree._Element,
                  legacy_cipher: bool) -> etree._Element | None:
    """The content key from `encrypted_key` with our `key`, then the EncryptedData with it (in a copy); or None.

    The contexts are given their keys directly: an xmlsec KeysManager costs about 20 ms to create (it loads an
    X.509 store), more than the RSA decryption itself.
    """
    context = xmlsec.EncryptionContext()
    context.key = xmlsec_private_key(key)
    try:
        content_key = context.decrypt(encrypted_key)  # bytes: an EncryptedKey is not replaced in the tree
        if not isinstance(content_key, bytes):
            return None
        work = deepcopy(encrypted_parent)
        context = xmlsec.EncryptionContext()
        cipher_key = xmlsec.constants.KeyDataDes if legacy_cipher else xmlsec.constants.KeyDataAes
        context.key = xmlsec.Key.from_binary_data(cipher_key, content_key)
        result = context.decrypt(work.find(f"{XENC}EncryptedData"))
    except (xmlsec.Error, xmlsec.InternalError):
        return None
    return result if isinstance(result, etree._Element) else None


# -- encrypting our assertions ------------------------------------------------------------------

# Ciphers we encrypt assertions with, best first (AES-GCM: CBC is open to padding-oracle attacks on XML
# Encryption); a platform whose metadata lists EncryptionMethods gets the first of these it lists.
CIPHERS = ("http://www.w3.org/2009/xmlenc11#aes256-gcm", "http://www.w3.org/2009/xmlenc11#aes128-gcm",
           "http://www.w3.org/2001/04/xmlenc#aes256-cbc", "http://www.w3.org/2001/04/xmlenc#aes128-cbc")
_CIPHER_TRANSFORMS = {
    "http://www.w3.org/2009/xmlenc11#aes256-gcm": (xmlsec.constants.TransformAes256Gcm, 256),
    "http://www.w3.org/2009/xmlenc11#aes128-gcm": (xmlsec.constants.TransformAes128Gcm, 128),
    "http://www.w3.org/2001/04/xmlenc#aes256-cbc": (xmlsec.constants.TransformAes256Cbc, 256),
    "http://www.w3.org/2001/04/xmlenc#aes128-cbc": (xmlsec.constants.TransformAes128Cbc, 128),
}


def encrypt_assertion(assertion: etree._Element, cert: Certificate, cipher: str) -> etree._Element:
    """The signed assertion as an EncryptedAssertion to `cert`'s key, RSA-OAEP + `cipher` (one of `CIPHERS`).

    The assertion is encrypted as a document of its own, so its namespace declarations travel with it.
    """
    transform, bits = _CIPHER_TRANSFORMS[cipher]
    holder = etree.Element(f"{SAML}EncryptedAssertion", nsmap={"saml": NS["saml"]})
    template = xmlsec.template.encrypted_data_create(holder, transform, type=xmlsec.constants.TypeEncElement,
                                                     ns="xenc")
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="ds")
    encrypted_key = xmlsec.template.add_encrypted_key(key_info, xmlsec.constants.TransformRsaOaep)
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
    manager, lock = _keys_manager(cert)
    with lock:
        ctx = xmlsec.EncryptionContext(manager)
        ctx.key = xmlsec.Key.generate(xmlsec.constants.KeyDataAes, bits, xmlsec.constants.KeyDataTypeSession)
        holder.append(ctx.encrypt_binary(template, etree.tostring(assertion, encoding="utf-8")))
    return holder


_managers: dict[str, tuple[xmlsec.KeysManager, threading.Lock]] = {}
_managers_lock = threading.Lock()


def _keys_manager(cert: Certificate) -> tuple[xmlsec.KeysManager, threading.Lock]:
    """An xmlsec keys manager holding a platform's encryption certificate, kept for the process: building one
    costs about 30 ms (xmlsec loads the system's CA store). Its lock serialises the encryptions that use it."""
    with _managers_lock:
        entry = _managers.get(cert.sha256)
        if entry is None:
            manager = xmlsec.KeysManager()
            manager.add_key(cert.xmlsec_key())
            entry = _managers[cert.sha256] = (manager, threading.Lock())
    return entry
