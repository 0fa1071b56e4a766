"""Card encoders: transports that carry ISO-DEP frames between the issuing host and a card.

The host does every cryptographic step; an encoder only switches the field, activates a card
and carries APDUs (docs/card-issuance.md, docs/encoder-protocol.md)."""
