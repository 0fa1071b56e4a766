"""Issuer and installer work: card key files and reader provisioning bundles (formats live in trustcore)."""
