"""Issuer and installer tooling: keys, trust lists, card credentials (host side of the trust core)."""
