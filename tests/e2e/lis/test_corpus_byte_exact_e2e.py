"""The whole sample corpus, byte for byte as the files are (no tags), sent once in MANIFEST order to a
real lis_consumer process over a fresh database.

Unlike the tagged per-file runs, the files now meet each other: aidbox__ORU-R01__3 reuses
(MSH-4, MSH-10) = (HOSPITAL, TEST-MSG-001) of aidbox__ORU-R01__2 with another patient and result —
a message of its own, applied with the warning control_id_reused (it was once taken for a
duplicate and its HbA1c lost); the first and third messages of pyhl7__ADT-A04__2 repeat
pyhl7__ADT-A04__1 byte for byte under its control id — duplicates.
"""

import csv
from collections.abc import Iterator

import pytest
import requests
import sqlalchemy as sa

from shared.db import make_engine
from shared.migrate import migrate
from tests.support.database import admin_url, create_database, drop_database
from tests.support.lis_delivery import eventarc_binary, new_id
from tests.support.lis_samples import FIXTURES, by_file
from tests.support.processes import start_function

pytestmark = pytest.mark.e2e

MEETING = {
    "aidbox__ORU-R01__3.hl7": [("processed", None)],
    "pyhl7__ADT-A04__2.hl7": [("duplicate", "same_control_id"), ("processed", None), ("duplicate", "same_control_id")],
}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Iterator[tuple[str, sa.Engine]]:
    admin = admin_url()
    url = create_database(admin, prefix="pmlis_corpus")
    engine = make_engine(url, pool_size=2)
    migrate(engine)
    proc = start_function("lis_consumer", {"DATABASE_URL": url, "THREADS": "2"}, tmp_path_factory.mktemp("corpus"))
    try:
        yield proc.url, engine
    finally:
        proc.stop()
        engine.dispose()
        drop_database(admin, url)


def test_the_corpus_in_manifest_order(fresh):
    url, engine = fresh
    with (FIXTURES / "MANIFEST.tsv").open() as f:
        files = [row["file"] for row in csv.DictReader(f, delimiter="\t")]
    samples = by_file()
    assert sorted(files) == sorted(samples) and len(files) == 34
    sent = {}
    for name in files:
        message_id = new_id()
        headers, body = eventarc_binary((FIXTURES / name).read_bytes(), message_id)
        assert requests.post(url + "/", data=body, headers=headers, timeout=30).status_code == 200, name
        sent[name] = message_id
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT id, pubsub_message_id, part, status, error_code, warnings, raw FROM lis_messages ORDER BY part")).all()
    by_message: dict[str, list] = {}
    for row in rows:
        by_message.setdefault(row.pubsub_message_id, []).append(row)
    for name in files:
        got = [(r.status, r.error_code) for r in by_message[sent[name]]]
        want = MEETING.get(name) or list(zip(samples[name].statuses, samples[name].reasons * len(samples[name].statuses)))
        assert got == want, name
        stored = by_message[sent[name]]
        if len(stored) == 1:
            assert stored[0].raw == (FIXTURES / name).read_bytes(), f"{name} is stored byte-exact"
    [egfr] = by_message[sent["aidbox__ORU-R01__2.hl7"]]
    [hba1c] = by_message[sent["aidbox__ORU-R01__3.hl7"]]
    assert f"control_id_reused:{egfr.id}" in hba1c.warnings
    with engine.connect() as conn:
        patients = conn.execute(sa.text("SELECT count(*) FROM patients")).scalar()
        results = conn.execute(sa.text("SELECT count(*) FROM lab_results")).scalar()
    # 17 files create a patient (both pyhl7 ADT^A04 files are one patient).
    assert patients == 17
    assert results == 1 + 1 + 1 + 2 + 4 + 2  # aidbox 1, 2 and 3, elixir ORU, lfh ORU, pyhl7 ORU
