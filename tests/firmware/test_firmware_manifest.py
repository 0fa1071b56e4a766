"""firmware/manifest.py names exactly what ships to a reader: every firmware module that
device/main.py and device/boot.py import (transitively, at any depth of the code) and nothing else,
and every file it names exists."""

from __future__ import annotations

import ast
from pathlib import Path

from support.micropython_runner import FIRMWARE

ENTRY_POINTS = ("device/main.py", "device/boot.py")
SHIPPED_FOLDERS = ("lib", "device")


def manifest_entries(manifest: Path) -> list[str]:
    """The files a micropython-lib style manifest names, as paths relative to its folder."""
    found: list[str] = []

    def module(name: str, base_path: str = ".", opt: int | None = None) -> None:
        found.append(str(Path(base_path) / name))

    def metadata(**_: object) -> None:
        return None

    code = compile(manifest.read_text(encoding="utf-8"), str(manifest), "exec")
    exec(code, {"module": module, "metadata": metadata, "__builtins__": {}})
    return found


def shipped_closure(root: Path, entry_points: tuple[str, ...]) -> set[str]:
    """Firmware files reached from the entry points through imports (top level, in functions,
    in try blocks), resolved the way the reader resolves them: /lib and the device root."""

    def local(name: str) -> Path | None:
        for folder in SHIPPED_FOLDERS:
            candidate = root / folder / f"{name}.py"
            if candidate.exists():
                return candidate
        return None

    seen: set[Path] = set()
    todo = [root / e for e in entry_points]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                target = local(name.split(".")[0])
                if target is not None:
                    todo.append(target)
    return {str(p.relative_to(root)) for p in seen}


def test_manifest_names_exactly_what_main_imports() -> None:
    entries = manifest_entries(FIRMWARE / "manifest.py")
    assert len(entries) == len(set(entries)), "a module is named twice"
    closure = shipped_closure(FIRMWARE, ENTRY_POINTS)
    assert sorted(closure - set(entries)) == [], "imported by the reader but missing from manifest.py"
    assert sorted(set(entries) - closure) == [], "in manifest.py but nothing on the reader imports it"
    assert "lib/assembly.py" in closure and "lib/uplink.py" in closure


def test_manifest_files_exist_and_none_is_a_test_or_tool() -> None:
    entries = manifest_entries(FIRMWARE / "manifest.py")
    assert [e for e in entries if not (FIRMWARE / e).is_file()] == []
    assert [e for e in entries if e.split("/")[0] not in SHIPPED_FOLDERS] == []


def test_the_closure_follows_nested_imports(tmp_path: Path) -> None:
    """The check can fail: an import inside a function pulls its module in; others stay out."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "device").mkdir()
    (tmp_path / "device" / "main.py").write_text("import machine\ndef f():\n    import a\n")
    (tmp_path / "lib" / "a.py").write_text("from b import x\n")
    (tmp_path / "lib" / "b.py").write_text("x = 1\n")
    (tmp_path / "lib" / "unused.py").write_text("")
    assert shipped_closure(tmp_path, ("device/main.py",)) == {"device/main.py", "lib/a.py", "lib/b.py"}
