"""The web console for facility managers, HR and auditors (server-rendered, Vietnamese first).

``install(app, ctx)`` mounts it under ``/console`` on the gateway's FastAPI application; it calls
the same domain code and API handlers as the REST API, with a :class:`~gateway.console.accounts.
UserPrincipal` in place of a token's principal, so roles and unit scopes are one rule.
"""

from gateway.console.app import install

__all__ = ["install"]
