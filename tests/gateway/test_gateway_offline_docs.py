"""/docs and /redoc work without internet: every asset they load is served by the gateway itself,
and the vendored files are the ones VENDORED.md records (version, licence, sha256)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from gateway.api import ApiContext, create_app
from gateway.secretbox import SecretBox
from gateway.settings import Settings

STATIC = Path(__file__).resolve().parents[2] / "gateway" / "static"
REF = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""")


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    engine = create_engine(f"sqlite:///{tmp_path / 'g.db'}")
    ctx = ApiContext(engine=engine, settings=Settings(data_dir=tmp_path), box=SecretBox(b"\x01" * 32))
    return TestClient(create_app(ctx))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_nothing_from_outside(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200
    html = r.text
    assert "cdn.jsdelivr.net" not in html and "fonts.googleapis.com" not in html
    assert "fastapi.tiangolo.com" not in html
    refs = [a or b for a, b in REF.findall(html)]
    assert refs, "the page loads its script from somewhere"
    for ref in refs:
        assert not re.match(r"^(?:[a-z]+:)?//", ref), f"{page} references an external URL: {ref}"
        if ref.startswith("/"):
            assert client.get(ref).status_code == 200, ref
    assert not re.search(r"https?://(?!www\.w3\.org)", html), "no absolute URL at all in the page"


def test_swagger_ui_does_not_call_the_public_validator(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text


def test_vendored_files_match_their_record() -> None:
    table = (STATIC / "VENDORED.md").read_text(encoding="utf-8")
    rows = re.findall(r"\| `([^`]+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \| `([0-9a-f]{64})` \|", table)
    assert len(rows) >= 6
    for rel, _package, version, licence, digest in rows:
        data = (STATIC / rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, rel
        assert version.strip() and licence.strip() in ("Apache-2.0", "MIT")
    listed = {r[0] for r in rows}
    on_disk = {
        str(p.relative_to(STATIC)) for p in STATIC.rglob("*") if p.is_file() and p.name != "VENDORED.md"
    }
    assert on_disk == listed, "every vendored file is recorded, and only those"


def test_served_assets_are_the_vendored_bytes(client: TestClient) -> None:
    for rel in ("swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css", "redoc/redoc.standalone.js"):
        r = client.get(f"/static/docs/{rel}")
        assert r.status_code == 200
        assert r.content == (STATIC / rel).read_bytes()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    import uvicorn

    engine = create_engine(f"sqlite:///{tmp_path / 'g.db'}")
    ctx = ApiContext(engine=engine, settings=Settings(data_dir=tmp_path), box=SecretBox(b"\x01" * 32))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.mark.e2e
@pytest.mark.parametrize(("page", "rendered"), [("/docs", "opblock-tag"), ("/redoc", "api-content")])
def test_a_browser_without_internet_renders_the_pages(served: str, page: str, rendered: str) -> None:
    """Headless Chromium with every host but 127.0.0.1 unresolvable: the page's scripts run and
    draw the API (operations listed), as on an agency network without internet."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("Debian's chromium is required (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    proc = subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--virtual-time-budget=15000",
         "--dump-dom", served + page],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    dom = proc.stdout
    assert rendered in dom, f"{page} did not render offline (rc {proc.returncode}): {proc.stderr[-1500:]}"
    assert "/api/v1/readers" in dom  # the operations came from /openapi.json and were drawn
