"""Folding of Vietnamese text for search without diacritics ("nguyen van an" finds "Nguyễn Văn An").

One rule, three homes that must agree and are generated here: :func:`fold` in Python, the SQL
function ``cbcc_fold`` (PostgreSQL: an IMMUTABLE ``translate(lower(...))``, so an expression index
can serve prefix searches over 2 M names; SQLite: this function registered on each connection).
Folding: every Latin letter with Vietnamese marks → its base letter, đ/Đ → d, lower case, runs of
white space → one space, trimmed.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

_VOWELS: Final = "àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ"
_SPACE = re.compile(r"\s+")


def _base(ch: str) -> str:
    return unicodedata.normalize("NFD", ch)[0].lower()


def _table() -> tuple[str, str]:
    src, dst = [], []
    for ch in _VOWELS + _VOWELS.upper():
        src.append(ch)
        dst.append(_base(ch))
    src += ["đ", "Đ"]
    dst += ["d", "d"]
    return "".join(src), "".join(dst)


FROM_CHARS, TO_CHARS = _table()
_TRANSLATE: Final = str.maketrans(FROM_CHARS, TO_CHARS)


def fold(text: str | None) -> str:
    """``text`` without Vietnamese diacritics, lower case, single-spaced (NFC or NFD input)."""
    if not text:
        return ""
    nfc = unicodedata.normalize("NFC", text).translate(_TRANSLATE)
    # Anything else with marks (other Latin letters): drop the combining characters.
    plain = "".join(c for c in unicodedata.normalize("NFD", nfc) if not unicodedata.combining(c))
    return _SPACE.sub(" ", plain.lower()).strip()


def pg_function_sql() -> str:
    """``CREATE FUNCTION cbcc_fold(text)``: the same folding for NFC text, usable in an index.

    ``regexp_replace`` with a constant pattern and ``translate``/``lower``/``btrim`` are immutable;
    the SQL folds only the Vietnamese letters listed here (names from the national database are NFC)."""
    src = FROM_CHARS.replace("'", "''")
    dst = TO_CHARS.replace("'", "''")
    return (
        "CREATE OR REPLACE FUNCTION cbcc_fold(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE "
        f"AS $$ SELECT btrim(regexp_replace(lower(translate(t, '{src}', '{dst}')), '\\s+', ' ', 'g')) $$"
    )
