"""The reader id rule, one home for the host (the firmware's copy is ``firmware/lib/assembly.py``).

A reader id is the reader's MQTT username and client id, one level of its topics
(``cbcc/v1/r/{rid}/...``), the ``reader_id`` of its signed configuration and a key of the gateway's
tables: lower-case letters, digits and ``-``, starting with a letter or digit, 1-63 characters.
"""

from __future__ import annotations

import re
from typing import Final

READER_ID_MAX: Final = 63
READER_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,62}$"
READER_ID: Final = re.compile(READER_ID_PATTERN)


def is_reader_id(value: object) -> bool:
    """True when ``value`` is a string that follows the reader id rule."""
    return isinstance(value, str) and READER_ID.fullmatch(value) is not None
