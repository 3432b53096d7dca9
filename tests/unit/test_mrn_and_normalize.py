import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from shared.mrn import is_valid_mrn, luhn_check_digit
from shared.normalize import fold, has_control_chars, tokens


def test_luhn_known_values():
    # Classic Luhn example: 7992739871 has check digit 3.
    assert luhn_check_digit("7992739871") == "3"
    assert is_valid_mrn("79927398713")
    assert not is_valid_mrn("79927398710")


@given(st.integers(min_value=10_000_000, max_value=10**12))
def test_every_generated_mrn_validates_and_a_changed_digit_does_not(n):
    mrn = str(n) + luhn_check_digit(str(n))
    assert is_valid_mrn(mrn)
    wrong = mrn[:-1] + str((int(mrn[-1]) + 1) % 10)
    assert not is_valid_mrn(wrong)


def test_fold_ignores_case_accents_spacing_and_hyphens():
    assert fold("García") == fold("GARCIA") == "garcia"
    assert fold("Müller") == fold("MULLER")
    assert fold("De la Cruz-Núñez") == fold("delacruz nunez")
    assert tokens("De la Cruz-Núñez") == ["de", "la", "cruz", "nunez"]


def test_control_characters_are_detected():
    assert has_control_chars("Ana\x00")
    assert has_control_chars("Ana\u200b")  # zero-width space (format character)
    assert not has_control_chars("Ana María")


def _folded_by_unicode(text: str) -> str:
    """The general rule, character by character (what ``normalize`` skips for ASCII text)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)) | st.text())
def test_the_ascii_shortcut_folds_and_checks_as_the_unicode_rules_do(text):
    assert fold(text) == re.sub(r"[\s\-'’.,]+", "", _folded_by_unicode(text))
    assert tokens(text) == [t for t in re.split(r"[\s\-'’.,]+", _folded_by_unicode(text)) if t]
    assert has_control_chars(text) == any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") for c in text)


def test_every_ascii_character_is_checked_as_the_unicode_rules_check_it():
    for code in range(0x80):
        text = f"Ab{chr(code)}c"
        assert has_control_chars(text) == (unicodedata.category(chr(code)) == "Cc"), code
        assert tokens(text) == [t for t in re.split(r"[\s\-'’.,]+", _folded_by_unicode(text)) if t], code
