"""The error type of issuer and installer work (card keys, reader provisioning bundles)."""


class ProvisioningError(Exception):
    """A provisioning step refused its input or could not complete; the message is fit for a user."""
