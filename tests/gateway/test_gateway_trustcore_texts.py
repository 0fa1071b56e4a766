"""A trust-core refusal shown by the API reads in the request's language: the configuration push
hands the reader-configuration compiler's error (an English template with fields, which the trust
core keeps because it cannot import the catalog) to the API, which renders it per request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from test_gateway_api import API, Env, make_env

from gateway.mqtt.downlink import Downlink


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = make_env(f"sqlite:///{tmp_path / 'g.db'}")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    e.ctx.downlink = Downlink(e.engine, key, lambda topic, payload, qos, retain: None)
    yield e
    e.client.close()
    e.engine.dispose()


@pytest.mark.parametrize(
    ("source", "vi", "en"),
    [
        (
            {"door": [{"id": "d1", "name": "Cửa chính", "mode": "ajar"}]},
            "door[0].mode: phải là một trong normal",
            "door[0].mode: must be one of normal",
        ),
        (
            {"door": [{"id": "d1", "name": "Cửa chính", "unlock_schedule": "office"}]},
            "door[0].unlock_schedule: không có schedule nào có id 'office' (chưa khai báo mục nào)",
            "door[0].unlock_schedule: no schedule with id 'office' (none is defined)",
        ),
    ],
)
def test_a_refused_configuration_reads_in_the_request_language(
    env: Env, source: dict[str, object], vi: str, en: str
) -> None:
    path = API + "/readers/r-h1/config"
    said = {}
    for lang in ("vi", "en"):
        r = env.client.post(
            path, json={"config": source}, headers=env.h("facility") | {"Accept-Language": lang}
        )
        assert r.status_code == 422 and r.json()["code"] == "downlink_refused", r.text
        assert r.headers["content-language"] == lang
        said[lang] = r.json()["detail"]
    assert said["vi"].startswith(vi), said
    assert said["en"].startswith(en), said
