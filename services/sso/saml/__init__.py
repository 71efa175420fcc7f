"""What the SAML SP (`sp/`) and the SAML IdP (`idp/`) share: the ground every SAML message stands on.

- `xml.py`: safe XML parsing, namespaces, instants, IDs, and `Refused`, the refusal every check raises;
- `keys.py`: our key pairs and the certificates we trust or publish;
- `signatures.py`: strict XML signatures (verifying exactly SAML's shape; signing ours);
- `encryption.py`: XML Encryption (decrypting what IdPs send us; encrypting what platforms receive);
- `bindings.py`: the HTTP-Redirect and HTTP-POST bindings;
- `metadata.py`: reading SAML metadata documents;
- `config_checks.py`: what the `saml:` and `idp:` configuration sections share.
"""
