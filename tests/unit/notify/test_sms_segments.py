"""SMS segment counting (GSM 03.38 / UCS-2)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.notify.sms import GSM7_BASIC, GSM7_EXTENSION, is_gsm7, sms_segments


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 0),
        ("a", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("ñÑéü¿¡@£", 1),  # GSM-7 basic, Spanish letters included
        ("€" * 80, 1),  # extension characters cost two septets: 160
        ("€" * 81, 2),
        ("a" * 152 + "€" + "a" * 152, 3),  # 306 septets, but the escape pair cannot straddle parts
        ("á" * 70, 1),  # UCS-2
        ("á" * 71, 2),
        ("á" * 134, 2),
        ("á" * 135, 3),
        ("a" * 100 + "á", 2),  # one non-GSM character switches the whole text to UCS-2
        ("a" * 159 + "á", 3),
        ("😀" * 35, 1),  # a surrogate pair is two UTF-16 units
        ("😀" * 36, 2),
        ("a" * 66 + "😀" + "a" * 66, 3),  # 134 units, but the pair cannot straddle parts
    ],
)
def test_segments(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


def test_alphabet() -> None:
    assert is_gsm7("Ya puede consultar sus resultados: https://portal.example.org/a_b?x=1")
    assert not is_gsm7("están")
    assert "\x1b" not in GSM7_BASIC
    assert not GSM7_BASIC & GSM7_EXTENSION


@given(st.text(alphabet=sorted(GSM7_BASIC), max_size=1000))
def test_basic_gsm_text_matches_the_closed_formula(text: str) -> None:
    n = len(text)
    expected = 0 if n == 0 else 1 if n <= 160 else math.ceil(n / 153)
    assert sms_segments(text) == expected


@given(st.text(max_size=400), st.characters())
def test_appending_never_reduces_the_count(text: str, extra: str) -> None:
    assert sms_segments(text + extra) >= sms_segments(text)
