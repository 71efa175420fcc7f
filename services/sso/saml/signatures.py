"""Strict XML signatures: verifying exactly the shape SAML uses, and signing ours.

`verify_enveloped` accepts one `ds:Signature` child of the signed element, one
`Reference` to that element's own `ID` (registered as the only ID xmlsec may
resolve), only the enveloped and exclusive-c14n transforms, allow-listed
algorithms (SHA-1 only with `allow_legacy`), and a key from the trust list (the
`KeyInfo` an attacker sends is never used as a key). Callers then read data
only from the element whose signature was verified. `sign_enveloped` signs ours
(exclusive c14n, SHA-256, our key's signature method).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import xmlsec
from cryptography.hazmat.primitives import hashes
from lxml import etree

from .keys import ECDSA_SHA256, RSA_SHA256, Certificate, KeyPair
from .xml import DS, Refused

C14N_EXCL = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"

# signature method URI -> (xmlsec transform, cryptography hash, key type)
_SIGNATURE_METHODS = {
    RSA_SHA256: (xmlsec.constants.TransformRsaSha256, hashes.SHA256, "rsa"),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": (xmlsec.constants.TransformRsaSha384, hashes.SHA384, "rsa"),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": (xmlsec.constants.TransformRsaSha512, hashes.SHA512, "rsa"),
    ECDSA_SHA256: (xmlsec.constants.TransformEcdsaSha256, hashes.SHA256, "ec"),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": (xmlsec.constants.TransformEcdsaSha384, hashes.SHA384, "ec"),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": (xmlsec.constants.TransformEcdsaSha512, hashes.SHA512, "ec"),
    RSA_SHA1: (xmlsec.constants.TransformRsaSha1, hashes.SHA1, "rsa"),  # only with allow_legacy
}
_DIGEST_METHODS = {
    SHA256: xmlsec.constants.TransformSha256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384": xmlsec.constants.TransformSha384,
    "http://www.w3.org/2001/04/xmlenc#sha512": xmlsec.constants.TransformSha512,
    SHA1: xmlsec.constants.TransformSha1,  # only with allow_legacy
}
SHA1_URIS = {RSA_SHA1, SHA1}


def accepted_algorithms(allow_legacy: bool) -> tuple[dict, dict]:
    sig = {k: v for k, v in _SIGNATURE_METHODS.items() if allow_legacy or k not in SHA1_URIS}
    dig = {k: v for k, v in _DIGEST_METHODS.items() if allow_legacy or k not in SHA1_URIS}
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
    sig_methods, digest_methods = accepted_algorithms(allow_legacy)
    signed_info = signature.find(f"{DS}SignedInfo")
    if signed_info is None:
        raise Refused("signature-structure", f"{what}: signature without SignedInfo")
    c14n = signed_info.find(f"{DS}CanonicalizationMethod")
    if c14n is None or c14n.get("Algorithm") != C14N_EXCL:
        raise Refused("signature-structure", f"{what}: canonicalisation must be exclusive c14n without comments")
    method = signed_info.find(f"{DS}SignatureMethod")
    method_uri = method.get("Algorithm") if method is not None else None
    if method_uri not in sig_methods:
        raise Refused("weak-algorithm" if method_uri in SHA1_URIS else "signature-structure",
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
        raise Refused("weak-algorithm" if digest_uri in SHA1_URIS else "signature-structure",
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
        ctx.enable_signature_transform(xmlsec.constants.TransformExclC14N)
        ctx.enable_signature_transform(sig_methods[method_uri][0])
        for t in (xmlsec.constants.TransformEnveloped, xmlsec.constants.TransformExclC14N, digest_methods[digest_uri]):
            ctx.enable_reference_transform(t)
        ctx.set_enabled_key_data([xmlsec.constants.KeyDataX509])
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
    signature = xmlsec.template.create(element, xmlsec.constants.TransformExclC14N, _SIGNATURE_METHODS[method][0],
                                       ns="ds")
    if after is not None:
        after.addnext(signature)
    else:
        element.insert(0, signature)
    ref = xmlsec.template.add_reference(signature, xmlsec.constants.TransformSha256, uri=f"#{element_id}")
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformExclC14N)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    ctx = xmlsec.SignatureContext()
    sign_key = xmlsec.Key.from_memory(key.private_pem, xmlsec.constants.KeyDataFormatPem, None)
    sign_key.load_cert_from_memory(key.certificate.pem, xmlsec.constants.KeyDataFormatPem)
    ctx.key = sign_key
    ctx.register_id(element, "ID")
    ctx.sign(signature)
