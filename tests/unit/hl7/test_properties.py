"""Property: for any bytes, parsing returns a Message or raises HL7Error, and nothing else.

Any other exception would be a bug that a consumer could only retry forever; HL7Error is the
"permanently impossible" answer. Inputs: random bytes, HL7-looking noise built from delimiters
and segment ids, valid messages with random escape sequences, and byte-level mutations of every
golden sample.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.hl7 import HL7Error, Message, parse_message, split_messages

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hl7"
SAMPLES = [path.read_bytes() for path in sorted(FIXTURES.glob("*.hl7"))]
BASE = (
    b"MSH|^~\\&|APP|FAC|LIS|LAB|20240101120000||ORU^R01|C1|P|2.5.1\r"
    b"PID|1||MRN1^^^HOSP^MR||DOE^JANE||19800202|F\r"
    b"OBR|1|P1|F1|GLU^Glucose^LN|||20240101\r"
    b"OBX|1|%s|GLU^Glucose^LN||%s|mmol/L|3-6|H|||F|||20240101\r"
    b"NTE|1||%s"
)
INTERESTING = [
    b"|",
    b"^",
    b"~",
    b"\\",
    b"&",
    b"#",
    b"\r",
    b"\n",
    b"\r\n",
    b"\x0b",
    b"\x1c",
    b"\x00",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b'""',
    b"MSH",
    b"MSH|",
    b"PID|",
    b"OBR|",
    b"OBX|",
    b"MRG|",
    b"BHS|",
    b"BTS|",
    b"\\r",
    b"\\X",
    b"\\.sp",
    b"\\XC3A9\\",
    b"-0500",
    b"+9999",
    b"ORU^R01",
    b"ADT^A40",
    b"OUL^R22",
]

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(raw: bytes) -> None:
    try:
        message = parse_message(raw)
    except HL7Error as error:
        assert error.reason and isinstance(str(error), str)
    else:
        assert isinstance(message, Message)
        assert message.header.control_id and message.header.message_type
    try:
        parts = split_messages(raw)
    except HL7Error:
        return
    for part in parts:
        assert part.startswith(b"MSH")
        with contextlib.suppress(HL7Error):
            parse_message(part)


@SETTINGS
@given(st.binary(max_size=600))
def test_random_bytes(raw: bytes) -> None:
    outcome(raw)


@SETTINGS
@given(st.binary(max_size=300).map(lambda tail: b"MSH|^~\\&|" + tail))
def test_random_bytes_after_an_msh_start(raw: bytes) -> None:
    outcome(raw)


hl7ish = st.lists(
    st.one_of(st.sampled_from(INTERESTING), st.text("ABCZ019 ./-:", max_size=6).map(str.encode)), max_size=80
).map(b"".join)


@SETTINGS
@given(hl7ish)
def test_hl7_looking_noise(raw: bytes) -> None:
    outcome(raw)


escapes = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "\\F\\",
                "\\S\\",
                "\\T\\",
                "\\R\\",
                "\\E\\",
                "\\P\\",
                "\\H\\",
                "\\N\\",
                "\\.br\\",
                "\\.sp\\",
                "\\.sk3\\",
                "\\.in-2\\",
                "\\.ce\\",
                "\\.fi\\",
                "\\Zabc\\",
                "\\C2842\\",
                "\\",
                "\\\\",
            ]
        ),
        st.from_regex(r"\\X[0-9A-Fa-f]{0,9}\\", fullmatch=True),
        st.from_regex(r"\\\.sp[ -~]{0,4}\\", fullmatch=True),
        # any printable text; control characters (CR, LF, MLLP bytes) would break the structure
        st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=5),
    ),
    max_size=12,
).map("".join)


@SETTINGS
@given(st.sampled_from(["NM", "SN", "TX", "FT", "ST", "CWE", "CE", "", "N^K&M"]), escapes, escapes)
def test_valid_message_with_random_escapes(value_type: str, value: str, note: str) -> None:
    raw = BASE % (value_type.encode(), value.encode(), note.encode())
    message = parse_message(raw)  # every one of these is a valid ORU
    assert message.orders[0].results[0].code.code == "GLU"


mutation = st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=8), st.sampled_from(INTERESTING))


@SETTINGS
@given(st.sampled_from(SAMPLES), st.lists(mutation, min_size=1, max_size=6))
def test_mutated_samples(sample: bytes, mutations: list[tuple[int, int, bytes]]) -> None:
    raw = bytearray(sample)
    for position, cut, insert in mutations:
        at = position % (len(raw) + 1)
        raw[at : at + cut] = insert
    outcome(bytes(raw))


@SETTINGS
@given(st.sampled_from(SAMPLES), st.integers(min_value=0))
def test_truncated_samples(sample: bytes, length: int) -> None:
    outcome(sample[: length % (len(sample) + 1)])


labels = st.one_of(
    st.sampled_from(
        [
            "8859/1",
            "UNICODE UTF-8",
            "ISO IR87",
            "undefined",
            "unicode_escape",
            "idna",
            "utf-7",
            "cp037",
            "utf-16",
            "rot13",
            "base64",
            "zlib",
            "hex",
            "GB 18030-2000",
            "BIG-5",
            "KS X 1001",
        ]
    ),
    st.text(max_size=20),
)


@SETTINGS
@given(labels, st.binary(max_size=40))
def test_any_msh18_label_with_any_bytes(label: str, payload: bytes) -> None:
    raw = (
        b"MSH|^~\\&|A|F|||20240101||ADT^A08|C1|P|2.5||||||"
        + label.encode("utf-8", "surrogatepass")
        + b"\rPID|1||1^^^H||"
        + payload
    )
    outcome(raw)
