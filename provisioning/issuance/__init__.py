"""Card issuance: a blank DESFire card personalised per docs/card-layout.md through an encoder,
verified as a reader reads it, and recorded in the gateway database (docs/card-issuance.md)."""
