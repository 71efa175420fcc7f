"""Usage statistics: the SSO's and provisioning's events turned into anonymised indicators (README.md)."""
