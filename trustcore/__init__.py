"""Formats and crypto shared by issuing and the gateway: CBOR, COSE, keys, credentials, signed lists."""
