"""The XML and crypto ground the SAML SP stands on: safe parsing, strict XML signatures, keys, bindings.

Everything a SAML message goes through before anyone reads a value from it:

- `parse` reads XML without DTD, entities or network; a DOCTYPE is refused, and so
  are comments and processing instructions (the NameID comment trick:
  exclusive canonicalisation ignores comments, so `user@a<!---->.evil` verifies
  as `user@a.evil` while a naive reader sees `user@a`).
- `verify_enveloped` accepts exactly the signature shape SAML uses: one
  `ds:Signature` child of the signed element, one `Reference` to that element's
  own `ID` (registered as the only ID xmlsec may resolve), only the enveloped and
  exclusive-c14n transforms, allow-listed algorithms, and a key from the trust
  list (the `KeyInfo` an attacker sends is never used as a key). IDs must be
  unique across the document. Callers then read data only from the element
  whose signature was verified.
- `sign_enveloped`, `redirect_url` / `verify_redirect` (HTTP-Redirect binding:
  DEFLATE, base64, a signature over the raw query octets) and `decrypt` (XML
  Encryption with any of our private keys, for key rollover).

A failed check raises `Refused(reason, detail)`: `reason` is a stable code for
logs, audit events and tests; `detail` a short text without message contents.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
import zlib
from collections.abc import Iterable, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

import xmlsec
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from lxml import etree

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
SAMLP, SAML, MD, DS, XENC = (f"{{{NS[k]}}}" for k in ("samlp", "saml", "md", "ds", "xenc"))
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"

BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"

C14N_EXCL = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"

# signature method URI -> (xmlsec transform, cryptography hash, key type)
_SIGNATURE_METHODS = {
    RSA_SHA256: (xmlsec.Transform.RSA_SHA256, hashes.SHA256, "rsa"),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": (xmlsec.Transform.RSA_SHA384, hashes.SHA384, "rsa"),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": (xmlsec.Transform.RSA_SHA512, hashes.SHA512, "rsa"),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": (xmlsec.Transform.ECDSA_SHA256, hashes.SHA256, "ec"),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": (xmlsec.Transform.ECDSA_SHA384, hashes.SHA384, "ec"),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": (xmlsec.Transform.ECDSA_SHA512, hashes.SHA512, "ec"),
    RSA_SHA1: (xmlsec.Transform.RSA_SHA1, hashes.SHA1, "rsa"),  # only with allow_legacy
}
_DIGEST_METHODS = {
    SHA256: xmlsec.Transform.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384": xmlsec.Transform.SHA384,
    "http://www.w3.org/2001/04/xmlenc#sha512": xmlsec.Transform.SHA512,
    SHA1: xmlsec.Transform.SHA1,  # only with allow_legacy
}
_SHA1_URIS = {RSA_SHA1, SHA1}
_KEY_TRANSPORT = {"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p", "http://www.w3.org/2009/xmlenc11#rsa-oaep"}
_BLOCK_CIPHERS = {f"http://www.w3.org/2001/04/xmlenc#aes{n}-cbc" for n in (128, 192, 256)} | {
    f"http://www.w3.org/2009/xmlenc11#aes{n}-gcm" for n in (128, 192, 256)}
_LEGACY_CIPHERS = {"http://www.w3.org/2001/04/xmlenc#tripledes-cbc"}  # only with allow_legacy

MAX_MESSAGE_BYTES = 512 * 1024  # a SAML message bigger than this is refused before parsing


class Refused(Exception):
    """A SAML message (or metadata) failed a check. `reason` is a stable code; `detail` is safe to log."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# -- parsing ------------------------------------------------------------------------------

def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=False, remove_pis=False, remove_blank_text=False)


def parse(data: bytes, what: str = "SAML message", *, max_bytes: int = MAX_MESSAGE_BYTES,
          allow_comments: bool = False) -> etree._Element:
    """Parse untrusted XML: no DTD, no entities, no network; comments refused unless `allow_comments`."""
    if len(data) > max_bytes:
        raise Refused("too-large", f"{what} is {len(data)} bytes (limit {max_bytes})")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise Refused("malformed", f"{what} is not well-formed XML: {exc.msg} (line {exc.lineno})") from None
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None:
        raise Refused("dtd-refused", f"{what} declares a DTD (entity expansion / XXE risk)")
    for node in root.iter(etree.Comment, etree.ProcessingInstruction, etree.Entity):
        if isinstance(node, etree._Comment) and allow_comments:
            continue
        parent = node.getparent()
        where = etree.QName(parent).localname if parent is not None else "document"
        kind = {etree._Comment: "a comment", etree._Entity: "an entity reference"}.get(type(node),
                                                                                     "a processing instruction")
        raise Refused("xml-comment" if kind == "a comment" else "malformed", f"{what} holds {kind} inside <{where}>")
    return root


def text_of(element: etree._Element | None) -> str | None:
    """All the text of an element, children included (never a comment's text)."""
    if element is None:
        return None
    if not len(element):  # a leaf (most values): its text is all there is; no need to walk it
        text = element.text
        return text.strip() if text else ""
    return "".join(element.itertext()).strip()


def check_unique_ids(root: etree._Element, what: str) -> None:
    """Every ID-like attribute value is unique, and xml:id (an ID libxml2 resolves by itself) is refused."""
    seen: set[str] = set()
    for el in root.iter(etree.Element):
        if XML_ID in el.attrib:
            raise Refused("duplicate-id", f"{what}: xml:id attributes are not allowed")
        for name in ("ID", "Id", "id"):
            value = el.get(name)
            if value is None:
                continue
            if value in seen:
                raise Refused("duplicate-id", f"{what}: the ID {value!r} appears more than once")
            seen.add(value)


# -- time -----------------------------------------------------------------------------------

def parse_instant(value: str | None, what: str) -> datetime | None:
    """An xs:dateTime (UTC; a value without zone is read as UTC, as SAML requires UTC anyway)."""
    if value is None:
        return None
    try:
        if "T" not in value:
            raise ValueError(value)
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Refused("malformed", f"{what}: not a date-time: {value[:40]!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    """A message ID: an NCName (starts with a letter or _) with 160 random bits."""
    return "_" + secrets.token_hex(20)


# -- keys and certificates -----------------------------------------------------------------

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
                                  xmlsec.KeyFormat.CERT_PEM, None)


@functools.lru_cache(maxsize=256)
def _xmlsec_public_key(der: bytes) -> xmlsec.Key:
    public = x509.load_der_x509_certificate(der).public_key()
    return xmlsec.Key.from_memory(public.public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo),
                                  xmlsec.KeyFormat.PEM, None)


@functools.lru_cache(maxsize=64)
def _xmlsec_private_key(pair: KeyPair) -> xmlsec.Key:
    """Our private key for xmlsec, loaded once (an encryption context keeps its own copy of it)."""
    return xmlsec.Key.from_memory(pair.private_pem, xmlsec.KeyFormat.PEM, None)


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
        if private.public_key().public_numbers() != cert.cert.public_key().public_numbers():
            raise ValueError(f"key_file {key_file} and cert_file {cert_file} do not belong together")
        return cls(key_id, private, cert, signing, encryption)

    @property
    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())

    @property
    def signature_method(self) -> str:
        return RSA_SHA256 if isinstance(self.private_key, rsa.RSAPrivateKey) else \
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"

    def sign_bytes(self, data: bytes) -> bytes:
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))


# -- XML signatures --------------------------------------------------------------------------

def _algorithms(allow_legacy: bool) -> tuple[dict, dict]:
    sig = {k: v for k, v in _SIGNATURE_METHODS.items() if allow_legacy or k not in _SHA1_URIS}
    dig = {k: v for k, v in _DIGEST_METHODS.items() if allow_legacy or k not in _SHA1_URIS}
    return sig, dig


def signature_of(element: etree._Element) -> etree._Element | None:
    """The element's own enveloped signature (a direct ds:Signature child), or None; several are refused."""
    found = element.findall(f"{DS}Signature")
    if len(found) > 1:
        raise Refused("signature-structure", f"<{etree.QName(element).localname}> has {len(found)} signatures")
    return found[0] if found else None


def verify_enveloped(element: etree._Element, trusted: Sequence[Certificate], what: str, *,
                     allow_legacy: bool = False, allow_whole_document: bool = False) -> Certificate:
    """Verify the enveloped signature of `element` with one of the `trusted` certificates; returns it.

    `allow_whole_document`: a `Reference URI=""` is accepted for a root element (metadata).
    """
    signature = signature_of(element)
    if signature is None:
        raise Refused("unsigned", f"{what} is not signed")
    sig_methods, digest_methods = _algorithms(allow_legacy)
    signed_info = signature.find(f"{DS}SignedInfo")
    if signed_info is None:
        raise Refused("signature-structure", f"{what}: signature without SignedInfo")
    c14n = signed_info.find(f"{DS}CanonicalizationMethod")
    if c14n is None or c14n.get("Algorithm") != C14N_EXCL:
        raise Refused("signature-structure", f"{what}: canonicalisation must be exclusive c14n without comments")
    method = signed_info.find(f"{DS}SignatureMethod")
    method_uri = method.get("Algorithm") if method is not None else None
    if method_uri not in sig_methods:
        raise Refused("weak-algorithm" if method_uri in _SHA1_URIS else "signature-structure",
                      f"{what}: signature method {method_uri} is not accepted")
    references = signed_info.findall(f"{DS}Reference")
    if len(references) != 1:
        raise Refused("signature-structure", f"{what}: the signature has {len(references)} references (1 expected)")
    reference = references[0]
    own_id = element.get("ID")
    uri = reference.get("URI")
    whole = allow_whole_document and uri == "" and element.getparent() is None
    if not whole and (not own_id or uri != f"#{own_id}"):
        raise Refused("signature-reference", f"{what}: the signature references {uri!r}, not the element it is in "
                                             f"(ID {own_id!r})")
    transforms = [t.get("Algorithm") for t in reference.findall(f"{DS}Transforms/{DS}Transform")]
    if not transforms or transforms[0] != ENVELOPED or any(t not in (ENVELOPED, C14N_EXCL) for t in transforms):
        raise Refused("signature-structure", f"{what}: reference transforms {transforms} are not accepted "
                                             "(enveloped-signature then exclusive c14n)")
    digest = reference.find(f"{DS}DigestMethod")
    digest_uri = digest.get("Algorithm") if digest is not None else None
    if digest_uri not in digest_methods:
        raise Refused("weak-algorithm" if digest_uri in _SHA1_URIS else "signature-structure",
                      f"{what}: digest method {digest_uri} is not accepted")
    if not trusted:
        raise Refused("signature-invalid", f"{what}: no trusted signing key is known for this issuer")

    for cert in _likely_first(signature, trusted):
        ctx = xmlsec.SignatureContext()
        ctx.key = cert.verification_key()
        if own_id:
            try:
                ctx.register_id(element, "ID")
            except xmlsec.Error:
                raise Refused("duplicate-id", f"{what}: the ID {own_id!r} is not unique") from None
        ctx.enable_signature_transform(xmlsec.Transform.EXCL_C14N)
        ctx.enable_signature_transform(sig_methods[method_uri][0])
        for t in (xmlsec.Transform.ENVELOPED, xmlsec.Transform.EXCL_C14N, digest_methods[digest_uri]):
            ctx.enable_reference_transform(t)
        ctx.set_enabled_key_data([xmlsec.KeyData.X509])
        try:
            ctx.verify(signature)
        except (xmlsec.Error, xmlsec.VerificationError):
            continue
        return cert
    raise Refused("signature-invalid", f"{what}: the signature does not verify with any trusted key "
                                       f"({len(trusted)} known for this issuer)")


def _likely_first(signature: etree._Element, trusted: Sequence[Certificate]) -> list[Certificate]:
    """Trusted certificates, the one the signature's KeyInfo names first (a hint only: never trusted itself)."""
    hint = signature.findtext(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    if hint:
        try:
            der = base64.b64decode("".join(hint.split()))
        except ValueError:
            der = b""
        return sorted(trusted, key=lambda c: c.der != der)
    return list(trusted)


def sign_enveloped(element: etree._Element, key: KeyPair, *, after: etree._Element | None = None) -> None:
    """Sign `element` in place (enveloped, exclusive c14n, SHA-256), the Signature placed after `after`."""
    element_id = element.get("ID")
    if not element_id:
        raise ValueError("the element to sign needs an ID")
    method = key.signature_method
    signature = xmlsec.template.create(element, xmlsec.Transform.EXCL_C14N, _SIGNATURE_METHODS[method][0], ns="ds")
    if after is not None:
        after.addnext(signature)
    else:
        element.insert(0, signature)
    ref = xmlsec.template.add_reference(signature, xmlsec.Transform.SHA256, uri=f"#{element_id}")
    xmlsec.template.add_transform(ref, xmlsec.Transform.ENVELOPED)
    xmlsec.template.add_transform(ref, xmlsec.Transform.EXCL_C14N)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    ctx = xmlsec.SignatureContext()
    sign_key = xmlsec.Key.from_memory(key.private_pem, xmlsec.KeyFormat.PEM, None)
    sign_key.load_cert_from_memory(key.certificate.pem, xmlsec.KeyFormat.PEM)
    ctx.key = sign_key
    ctx.register_id(element, "ID")
    ctx.sign(signature)


# -- HTTP-Redirect binding -------------------------------------------------------------------

def deflate_b64(xml: bytes) -> str:
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return base64.b64encode(compressor.compress(xml) + compressor.flush()).decode()


def inflate_b64(value: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=False)
        inflater = zlib.decompressobj(-15)
        out = inflater.decompress(raw, MAX_MESSAGE_BYTES + 1)
    except (ValueError, zlib.error):
        raise Refused("malformed", f"{what}: not DEFLATE + base64 (HTTP-Redirect binding)") from None
    if len(out) > MAX_MESSAGE_BYTES or inflater.unconsumed_tail:
        raise Refused("too-large", f"{what}: inflates beyond {MAX_MESSAGE_BYTES} bytes")
    return out


def redirect_url(location: str, param: str, xml: bytes, key: KeyPair | None, relay_state: str | None = None) -> str:
    """The HTTP-Redirect binding URL for a message, signed over the query octets when `key` is given."""
    query = f"{param}={quote(deflate_b64(xml), safe='')}"
    if relay_state is not None:
        query += f"&RelayState={quote(relay_state, safe='')}"
    if key is not None:
        query += f"&SigAlg={quote(key.signature_method, safe='')}"
        query += f"&Signature={quote(base64.b64encode(key.sign_bytes(query.encode())).decode(), safe='')}"
    return location + ("&" if "?" in location else "?") + query


def verify_redirect(raw_query: bytes, param: str, trusted: Sequence[Certificate], what: str, *,
                    allow_legacy: bool = False) -> Certificate:
    """Verify an HTTP-Redirect signature over the octets as received (SAML bindings 3.4.4.1)."""
    raw: dict[str, bytes] = {}
    for pair in raw_query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name in raw:
            raise Refused("malformed", f"{what}: query parameter {name.decode(errors='replace')} repeated")
        raw[name] = value
    if b"Signature" not in raw or b"SigAlg" not in raw:
        raise Refused("unsigned", f"{what} is not signed (HTTP-Redirect binding without Signature)")
    sig_alg = unquote_to_bytes(raw[b"SigAlg"].replace(b"+", b" ")).decode(errors="replace")
    methods, _ = _algorithms(allow_legacy)
    if sig_alg not in methods:
        raise Refused("weak-algorithm" if sig_alg in _SHA1_URIS else "signature-structure",
                      f"{what}: signature algorithm {sig_alg} is not accepted")
    octets = b"&".join(f"{n}=".encode() + raw[n.encode()] for n in (param, "RelayState", "SigAlg")
                       if n.encode() in raw)
    try:
        signature = base64.b64decode(unquote_to_bytes(raw[b"Signature"].replace(b"+", b" ")))
    except ValueError:
        raise Refused("malformed", f"{what}: the Signature parameter is not base64") from None
    _, hash_cls, kind = methods[sig_alg]
    for cert in trusted:
        public = cert.cert.public_key()
        try:
            if kind == "rsa" and isinstance(public, rsa.RSAPublicKey):
                public.verify(signature, octets, padding.PKCS1v15(), hash_cls())
            elif kind == "ec" and isinstance(public, ec.EllipticCurvePublicKey):
                public.verify(signature, octets, ec.ECDSA(hash_cls()))
            else:
                continue
        except InvalidSignature:
            continue
        return cert
    raise Refused("signature-invalid", f"{what}: the HTTP-Redirect signature does not verify with any trusted key")


# -- XML Encryption --------------------------------------------------------------------------

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
    context.key = _xmlsec_private_key(key)
    try:
        content_key = context.decrypt(encrypted_key)  # bytes: an EncryptedKey is not replaced in the tree
        if not isinstance(content_key, bytes):
            return None
        work = deepcopy(encrypted_parent)
        context = xmlsec.EncryptionContext()
        context.key = xmlsec.Key.from_binary_data(xmlsec.KeyData.DES if legacy_cipher else xmlsec.KeyData.AES,
                                                  content_key)
        result = context.decrypt(work.find(f"{XENC}EncryptedData"))
    except (xmlsec.Error, xmlsec.InternalError):
        return None
    return result if isinstance(result, etree._Element) else None
