"""FastAPI adapter of the gateway: ``create_app(ApiContext(engine, settings, box, ...))``."""

from gateway.api.app import API_PREFIX, create_app
from gateway.api.context import ApiContext, DownlinkLike, FleetLike

__all__ = ["API_PREFIX", "ApiContext", "DownlinkLike", "FleetLike", "create_app"]
