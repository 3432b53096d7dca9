"""Property: ``Segment.value(n, c)`` — the mapping's shortcut, which makes no repetition object — reads
what ``Segment.first(n).component(c)`` reads, for any field text, any delimiters (a component
separator or none) and any field and component number, escapes and HL7 nulls included."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.hl7.delimiters import Delimiters
from shared.hl7.segments import Segment, _Values

ALPHABET = ["a", "B", "7", " ", "^", "~", "&", "\\", '"', "|", "#", "X", "F", "E", "\t", "é"]
DELIMITERS = [
    Delimiters(field="|", component="^", repetition="~", escape="\\", subcomponent="&", truncation=None),
    Delimiters(field="|", component=None, repetition="~", escape="\\", subcomponent="&", truncation=None),
    Delimiters(field="|", component="^", repetition=None, escape=None, subcomponent=None, truncation=None),
    Delimiters(field="|", component="#", repetition="^", escape="~", subcomponent="&", truncation="#"),
]


@settings(max_examples=400)
@given(fields=st.lists(st.text(alphabet=ALPHABET, max_size=12), max_size=6), d=st.sampled_from(DELIMITERS),
       n=st.integers(min_value=-1, max_value=4), component=st.integers(min_value=-1, max_value=4))
def test_value_reads_what_the_first_repetitions_component_reads(fields, d, n, component) -> None:  # noqa: ANN001
    segment = Segment(["OBX", *fields], _Values(d, ("cp1252",)))
    assert segment.value(n, component) == segment.first(n).component(component)


def test_a_field_of_another_repetition_and_component_reads_as_sent() -> None:
    d = Delimiters(field="|", component="^", repetition="~", escape="\\", subcomponent="&", truncation=None)
    segment = Segment(["OBX", "1", " mg\\T\\dL ^second~other^x", '""'], _Values(d, ("cp1252",)))
    assert (segment.value(2), segment.value(2, 2), segment.value(2, 3), segment.value(3)) == ("mg&dL", "second", None, None)
