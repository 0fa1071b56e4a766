"""The base error type of the gateway's domain modules (lists, downlink, national sync).

The REST API maps these to HTTP problems and the ``cbcc`` command layer to messages and exit
codes; neither the domain modules nor the API know about the command line.
"""


class GatewayError(Exception):
    """A gateway operation refused its input or could not complete; the message is fit for a user."""
