"""CSV cells that a spreadsheet will not run as formulas, and back.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to a
spreadsheet (``=HYPERLINK(...)``). On export such a cell gets a leading ``'`` (the OWASP
convention); a cell that already starts with ``'`` before one of those gets one more, so
``restore`` (used when ingest reads a labels CSV) gives back exactly the original text.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _formula_like(text: str) -> bool:
    return text.lstrip("'").startswith(FORMULA_STARTS)


def neutralise(text: str) -> str:
    """The cell as written to CSV: formula-like text prefixed with ``'``."""
    return "'" + text if _formula_like(text) else text


def restore(text: str) -> str:
    """Undo ``neutralise``: one leading ``'`` before formula-like text is dropped."""
    return text[1:] if text.startswith("'") and _formula_like(text[1:]) else text
