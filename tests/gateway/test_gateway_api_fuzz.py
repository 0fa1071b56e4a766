"""Schemathesis against the gateway API's own OpenAPI document, with an admin token: no
operation answers 5xx to any input, valid or not, and every response matches the document.

The app runs in-process (ASGI) on SQLite with the real downlink (a throwaway signing key), seeded
with the same rows as tests/gateway/test_gateway_api.py. Examples per operation are capped so the whole
run stays well under two minutes on a shared two-core machine.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlmodel import Session
from test_gateway_api import seed

from gateway import auth, db
from gateway.api import ApiContext, create_app
from gateway.mqtt.downlink import Downlink
from gateway.secretbox import SecretBox
from gateway.settings import Settings

MAX_EXAMPLES = int(os.environ.get("CBCC_FUZZ_EXAMPLES", "25"))


def _build() -> tuple[Any, dict[str, str]]:
    """The app on a fresh, seeded SQLite database (built when the module is collected, because
    the parametrised test needs the schema then)."""
    workdir = Path(tempfile.mkdtemp(prefix="cbcc-fuzz-"))
    atexit.register(shutil.rmtree, workdir, True)
    url = f"sqlite:///{workdir / 'g.db'}"
    db.migrate(url)
    engine = db.make_engine(url)
    atexit.register(engine.dispose)
    seed(engine)
    with Session(engine) as s:
        _row, token = auth.create_token(s, "fuzz admin", "admin", "", "test")
        s.commit()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    downlink = Downlink(engine, key, lambda _t, _p, _q, _r: None)
    ctx = ApiContext(engine=engine, settings=Settings(), box=SecretBox(os.urandom(32)), downlink=downlink)
    return create_app(ctx), {"Authorization": f"Bearer {token}"}


APP, HEADERS = _build()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def schema_valid_input_passes_validation(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis's ``positive_data_acceptance``, minus what a schema cannot express: a
    schema-valid request may still be refused by the domain (a door that does not exist, a
    configuration the downlink refuses) with a 422 whose code says so. A 422 from request
    validation itself (``invalid_request``) means the document promised more than the app takes."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    code = json.loads(response.content or b"{}").get("code")
    if code in ("invalid_request", "unknown_parameter", "repeated_parameter"):
        raise AssertionError(f"schema-valid request rejected by validation: {response.content[:300]!r}")
    return None


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_never_5xx_and_matches_its_schema(case: Any) -> None:
    case.call_and_validate(
        headers=None if _drops_auth(case) else HEADERS,
        excluded_checks=[positive_data_acceptance],
        additional_checks=[schema_valid_input_passes_validation],
    )


def _drops_auth(case: Any) -> bool:
    """A negative case generated without the token goes without it (and must get a 4xx). Adding
    the token back would turn it into a request the check still calls negative, and a query
    value that serialises to nothing would then look like invalid data accepted."""
    meta = case.meta
    headers = {k.lower() for k in (case.headers or {})}
    return bool(meta and not meta.generation.mode.is_positive and "authorization" not in headers)
