"""Issuing cards end to end (docs/card-issuance.md): the national record or a CSV row, the serial,
the credential, the card personalised through an encoder (``provisioning.issuance``,
``provisioning.encoders``), and the record in the gateway database (``gateway.models``). It joins
provisioning and the gateway, so it lives with the command layer, which may import both."""
