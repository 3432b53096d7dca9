"""Text normalisation for matching names: case, accents, spacing and hyphens folded."""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s\-'’.,]+")


def fold(text: str) -> str:
    """'García-López ' → 'garcialopez'; 'MÜLLER' → 'muller'. For equality (duplicates)."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SEPARATORS.sub("", stripped.casefold())


def tokens(text: str) -> list[str]:
    """Folded words of a name, for prefix search: 'De la Cruz-Núñez' → ['de', 'la', 'cruz', 'nunez']."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return [t for t in re.split(r"[\s\-'’.,]+", stripped) if t]


def has_control_chars(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") for ch in text)
