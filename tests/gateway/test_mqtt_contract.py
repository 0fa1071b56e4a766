"""The AsyncAPI document is well-formed and agrees with the broker ACL every deployment uses:
what a reader sends it may publish, what it receives it may read, and nothing else."""

from __future__ import annotations

import re
from typing import Any

import yaml
from support.broker import ACL
from support.micropython_runner import ROOT

DOC: dict[str, Any] = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8"))


def _reader_acl() -> dict[str, set[str]]:
    rules: dict[str, set[str]] = {"read": set(), "write": set()}
    for line in ACL.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "pattern":
            rules[parts[1]].add(parts[2])
    return rules


def _matches(acl_topic: str, address: str) -> bool:
    concrete = address.replace("{rid}", "%u")
    concrete = re.sub(r"\{[^}]+\}", "x", concrete)
    if acl_topic.endswith("/#"):
        return concrete.startswith(acl_topic[:-1])
    return acl_topic == concrete


def test_document_shape() -> None:
    assert DOC["asyncapi"].startswith("3.")
    for name, op in DOC["operations"].items():
        ref = op["channel"]["$ref"]
        assert ref.startswith("#/channels/"), name
        assert ref.split("/")[-1] in DOC["channels"], name
        assert op["action"] in ("send", "receive")


def test_acl_allows_exactly_the_contract() -> None:
    acl = _reader_acl()
    for name, op in DOC["operations"].items():
        address = DOC["channels"][op["channel"]["$ref"].split("/")[-1]]["address"]
        need = "write" if op["action"] == "send" else "read"
        assert any(_matches(t, address) for t in acl[need]), f"{name}: {address} not allowed to {need}"
        if op["action"] == "receive":
            assert not any(_matches(t, address) for t in acl["write"]), f"reader may forge {address}"
    # Every reader-side ACL rule is used by some operation (no stray permissions).
    used = {
        DOC["channels"][op["channel"]["$ref"].split("/")[-1]]["address"] for op in DOC["operations"].values()
    }
    for kind, topics in acl.items():
        for t in topics:
            assert any(_matches(t, a) for a in used), f"unused ACL {kind} {t}"
