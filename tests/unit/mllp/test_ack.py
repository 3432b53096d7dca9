"""The ACK: sender and receiver swapped, version/processing id/charset kept, MSA-2 = MSH-10, ERR on errors."""

from shared.mllp.ack import build_ack, read_msh

MSG = b"MSH|^~\\&|LABAPP|CENTRAL LAB|PMAPP|HOSP|20240101120000||ORU^R01^ORU_R01|CTRL-77|T|2.3.1||||||8859/1\rPID|1\r"


def _segments(ack: bytes) -> list[list[bytes]]:
    return [line.split(b"|") for line in ack.rstrip(b"\r").split(b"\r")]


def test_aa_swaps_sender_and_receiver_and_echoes_the_control_id():
    msh, msa = _segments(build_ack(read_msh(MSG), "AA"))
    assert msh[:2] == [b"MSH", b"^~\\&"]
    assert msh[2:6] == [b"PMAPP", b"HOSP", b"LABAPP", b"CENTRAL LAB"]
    assert msh[8] == b"ACK^R01"
    assert msh[9] and msh[9] != b"CTRL-77"
    assert (msh[10], msh[11], msh[17]) == (b"T", b"2.3.1", b"8859/1")
    assert msa == [b"MSA", b"AA", b"CTRL-77"]


def test_ae_carries_an_err_segment_with_a_table_0357_code():
    *_, msa, err = _segments(build_ack(read_msh(MSG), "AE", error=("207", "Not stored"), text="not stored"))
    assert msa == [b"MSA", b"AE", b"CTRL-77", b"not stored"]
    assert err == [b"ERR", b"", b"", b"207^Not stored^HL70357", b"E"]


def test_the_senders_own_delimiters_are_used():
    msh_in = b"MSH#*~\\&#APP#FAC#ME#HERE#20240101##ADT*A01#X1#P#2.5"
    msh, msa = [line.split(b"#") for line in build_ack(read_msh(msh_in), "AA").rstrip(b"\r").split(b"\r")]
    assert msh[2:6] == [b"ME", b"HERE", b"APP", b"FAC"] and msh[8] == b"ACK*A01" and msa == [b"MSA", b"AA", b"X1"]


def test_an_unreadable_frame_is_answered_with_our_own_header():
    msh, msa, err = _segments(build_ack(None, "AR", error=("100", "Not an HL7 message")))
    assert msh[2] == b"patient-mgt" and msh[11] == b"2.5.1"
    assert msa == [b"MSA", b"AR", b""] and err[3] == b"100^Not an HL7 message^HL70357"


def test_read_msh_refuses_what_is_not_a_header():
    assert read_msh(b"PID|1") is None
    assert read_msh(b"MSHA|^~\\&|x") is None
    assert read_msh(b"MSH") is None
