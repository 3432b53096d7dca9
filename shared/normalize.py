"""Text normalisation for matching names: case, accents, spacing and hyphens folded."""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s\-'’.,]+")


def _folded(text: str) -> str:
    """NFKD, combining marks dropped, case folded. ASCII text is its own NFKD form and has no
    combining marks, and its case folding is ``lower()``: the per-character pass is skipped."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def fold(text: str) -> str:
    """'García-López ' → 'garcialopez'; 'MÜLLER' → 'muller'. For equality (duplicates)."""
    return _SEPARATORS.sub("", _folded(text))


# The width of the columns that store folded names (patients.family_norm, first_given_norm).
KEY_WIDTH = 200


def fold_key(text: str) -> str:
    """``fold(text)`` as the folded-name columns store it: cut to their width. Folding can lengthen a
    name (ß → ss, ﬁ → fi, Ⅻ → xii), so a name within its 200 characters may fold past them; every
    writer and every duplicate probe cuts the same way, so equal names still compare equal."""
    return fold(text)[:KEY_WIDTH]


def tokens(text: str) -> list[str]:
    """Folded words of a name, for prefix search: 'De la Cruz-Núñez' → ['de', 'la', 'cruz', 'nunez']."""
    return [t for t in _SEPARATORS.split(_folded(text)) if t]


def has_control_chars(text: str) -> bool:
    """Whether ``text`` holds a control, format, surrogate or private-use character. In ASCII only
    the controls (Cc) exist, and they are exactly its non-printable characters."""
    if text.isascii():
        return not text.isprintable()
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") for ch in text)
