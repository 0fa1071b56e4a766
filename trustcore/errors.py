"""The error type of the shared formats and crypto: bad input, a bad key file, a refused overwrite.

Callers (the gateway, provisioning, the ``cbcc`` command layer) decide what it means for them;
the command layer turns it into a one-line message and an exit code.
"""


class TrustcoreError(Exception):
    """A format, key or file problem found by the trust core; the message is fit for a user."""
