"""LIS writes keep every version of a patient, as the registry's own writes do."""

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models.versions import ResourceVersion
from tests.support import lis_db
from tests.support.lis_ingest import Feed, hl7, one


def test_a_lis_create_and_each_lis_change_are_kept_as_versions(database_url):
    f = Feed()
    assert one(hl7(f.msh("ADT^A04", "20260101100000"), f.pid("MRN1", name="FIRSTNAME^ANA", born="19800401", sex="F"))).status == "processed"
    assert one(hl7(f.msh("ADT^A08", "20260102100000"), f.pid("MRN1", name="SECONDNAME^ANA", born="19800401", sex="F"))).status == "processed"
    # the same demographics again change nothing, so they make no version
    assert one(hl7(f.msh("ADT^A08", "20260103100000"), f.pid("MRN1", name="SECONDNAME^ANA", born="19800401", sex="F"))).status == "processed"
    pid = lis_db.patient_id_by_identifier(f.facility, f.id("MRN1"))
    with unit_of_work() as uow:
        rows = uow.session.scalars(
            sa.select(ResourceVersion).where(ResourceVersion.resource_type == "patient", ResourceVersion.resource_id == pid)
            .order_by(ResourceVersion.id)).all()
    assert [(r.change, r.version, r.snapshot["name"]["family"], r.changed_by) for r in rows] == [
        ("lis-create", 1, "FIRSTNAME", "system:lis-consumer"),
        ("lis-update", 2, "SECONDNAME", "system:lis-consumer"),
    ]
