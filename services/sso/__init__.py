"""The SSO service: SAML SP towards the national IdPs, SSO sessions, and a CAS server for the ENT's apps."""
