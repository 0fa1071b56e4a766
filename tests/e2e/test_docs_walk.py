"""The first hour of a new operator: every documented command sequence, verbatim, in a fresh copy.

Each document's ``sh`` blocks (docs/docs-walk.md) run in order in their own copy of the
repository (its tracked and new files, committed in a fresh git repository) with a fresh home
folder; each command must exit 0 with its ``#>`` texts in its output and no traceback. Afterwards
``git status`` of the copy is clean (nothing written into the working tree that is not ignored),
every file holding a secret is 0600, and the temporary folder is empty (nothing left behind by
a stopped ``demo --serve`` or ``gateway run``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
from support.docs_walk import Command, blocks, documents
from support.micropython_runner import ROOT

PASS = "correct horse battery staple"
SECRET_NAMES = ("*.key.pem", "*.secrets.json", "master.key", "card-keys*", "gateway.pass", "*.pass")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fresh_copy(dest: Path) -> None:
    """The checkout as a fresh clone would have it (plus files not yet committed), in a new repo."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        src = ROOT / rel
        if not src.is_file():
            continue  # deleted in the work tree
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    git = ["git", "-c", "user.name=walk", "-c", "user.email=walk@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "fresh clone"], cwd=dest, check=True)


def _env(tmp: Path) -> dict[str, str]:
    home, tmpdir = tmp / "home", tmp / "tmp"
    home.mkdir()
    tmpdir.mkdir()
    real_cache = os.environ.get("UV_CACHE_DIR") or str(Path.home() / ".cache" / "uv")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),  # the data folder defaults to ~/.local/share/cbcc: here, not the real one
        "TMPDIR": str(tmpdir),
        "LANG": "C.UTF-8",
        "CBCC_PASSPHRASE": PASS,  # the operator's exported passphrase (else a prompt)
        # The code under test is the copy's; the locked environment is this checkout's (no sync).
        "PYTHONPATH": str(tmp / "repo"),
        "UV_PROJECT_ENVIRONMENT": str(ROOT / ".venv"),
        "UV_NO_SYNC": "1",
        "UV_CACHE_DIR": real_cache,
        # Free ports instead of 8080/1883/8883, which may be taken on a shared machine.
        "CBCC_HTTP__PORT": str(_free_port()),
        "CBCC_MQTT__PORT": str(_free_port()),
        "CBCC_MQTT__EMBEDDED_TLS_PORT": str(_free_port()),
    }
    for var in ("PGHOST", "CBCC_TEST_PG_ADMIN"):
        if var in os.environ:
            env[var] = os.environ[var]
    return env


class _Background:
    """A command left running (``runs until Ctrl-C``), its output collected as it comes."""

    def __init__(self, cmd: Command, cwd: Path, env: dict[str, str]) -> None:
        self.cmd = cmd
        self.proc = subprocess.Popen(
            ["bash", "-c", cmd.text],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.output = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output += line

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(e in self.output for e in self.cmd.expect):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"line {self.cmd.line}: `{self.cmd.text}` not ready: {self.output[-3000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            code = self.proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait(10)
        self._reader.join(5)
        return code


def _check_output(cmd: Command, code: int, output: str, where: str) -> None:
    assert code == 0, f"{where}: `{cmd.text}` exited {code}:\n{output[-4000:]}"
    assert "Traceback" not in output, f"{where}: `{cmd.text}` printed a traceback:\n{output[-4000:]}"
    for e in cmd.expect:
        assert e in output, f"{where}: `{cmd.text}` output lacks {e!r}:\n{output[-4000:]}"


def _walk(doc: Path, tmp: Path) -> None:
    repo = tmp / "repo"
    _fresh_copy(repo)
    env = _env(tmp)
    rel = doc.relative_to(ROOT)
    for block in blocks(repo / rel):
        if not block.walked:
            continue
        running: list[_Background] = []
        try:
            for cmd in block.commands():
                where = f"{rel}:{cmd.line}"
                if cmd.background:
                    bg = _Background(cmd, repo, env)
                    running.append(bg)
                    bg.wait_ready()
                    continue
                proc = subprocess.run(
                    ["bash", "-c", cmd.text],
                    cwd=repo,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                )
                _check_output(cmd, proc.returncode, proc.stdout + proc.stderr, where)
        finally:
            for bg in reversed(running):
                code = bg.stop()
                assert code in (0, 143), (
                    f"{rel}:{bg.cmd.line}: stopping `{bg.cmd.text}` gave {code}:\n" + (bg.output[-4000:])
                )
                assert "Traceback" not in bg.output, bg.output[-4000:]

    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert status == "", f"{rel}: the walk left changes in the working tree:\n{status}"
    leftovers = [p for p in (tmp / "tmp").iterdir() if not p.match("uv-*.lock")]  # uv's own lock
    assert not leftovers, f"{rel}: temporary files left behind: {leftovers}"
    for top in (repo, tmp / "home"):
        for pattern in SECRET_NAMES:
            for f in top.rglob(pattern):
                if f.is_file() and ".git" not in f.parts:
                    mode = stat.S_IMODE(f.stat().st_mode)
                    assert mode & 0o077 == 0, f"{f} holds a secret but has mode {oct(mode)}"


WALKED = [p for p in documents(ROOT) if any(b.walked for b in blocks(p))]


@pytest.mark.e2e
@pytest.mark.parametrize("doc", WALKED, ids=[str(p.relative_to(ROOT)) for p in WALKED])
def test_documented_commands_work_verbatim_from_a_fresh_clone(doc: Path, tmp_path: Path) -> None:
    _walk(doc, tmp_path)
