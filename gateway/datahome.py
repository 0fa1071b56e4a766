"""Where cbcc keeps what it writes when no path is given: one data folder per user, outside any
checkout, so that following the README never leaves secrets in a working tree.

``CBCC_HOME`` wins; else ``$XDG_DATA_HOME/cbcc``; else ``~/.local/share/cbcc``. Each tool has
its own sub-folder (``gateway/``, ...), created with mode 0700 by whoever writes into it.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    explicit = os.environ.get("CBCC_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "cbcc"


def tool_dir(tool: str) -> Path:
    return home() / tool
