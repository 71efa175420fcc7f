"""The SAML bindings: HTTP-Redirect (DEFLATE, base64, a signature over the raw query octets) and HTTP-POST.

`encode` sends one of our messages with a binding: a signed redirect URL, or the
message signed (enveloped) in a form the browser POSTs; `Outgoing` says which.
`inflate_b64` and `verify_redirect` read and check what comes by HTTP-Redirect.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from lxml import etree

from .keys import Certificate, KeyPair
from .signatures import SHA1_URIS, accepted_algorithms, sign_enveloped
from .xml import BINDING_REDIRECT, MAX_MESSAGE_BYTES, SAML, Refused, serialize


@dataclass(frozen=True)
class Outgoing:
    """Where the browser goes: GET `url` (form None) or POST `form` to `url`."""

    url: str
    form: dict[str, str] | None = None


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
    raw: dict[bytes, bytes] = {}
    for pair in raw_query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name in raw:
            raise Refused("malformed", f"{what}: query parameter {name.decode(errors='replace')} repeated")
        raw[name] = value
    if b"Signature" not in raw or b"SigAlg" not in raw:
        raise Refused("unsigned", f"{what} is not signed (HTTP-Redirect binding without Signature)")
    sig_alg = unquote_to_bytes(raw[b"SigAlg"].replace(b"+", b" ")).decode(errors="replace")
    methods, _ = accepted_algorithms(allow_legacy)
    if sig_alg not in methods:
        raise Refused("weak-algorithm" if sig_alg in SHA1_URIS else "signature-structure",
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


def encode(message: etree._Element, *, binding: str, location: str, param: str, key: KeyPair,
           relay_state: str | None = None) -> Outgoing:
    """Send a message with a binding: a signed redirect, or a signed message in a form to POST."""
    if binding == BINDING_REDIRECT:
        return Outgoing(redirect_url(location, param, serialize(message), key, relay_state))
    issuer = message.find(f"{SAML}Issuer")
    sign_enveloped(message, key, after=issuer)
    form = {param: base64.b64encode(serialize(message)).decode()}
    if relay_state is not None:
        form["RelayState"] = relay_state
    return Outgoing(location, form)
