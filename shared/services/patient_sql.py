"""The patient hot paths in as few round trips as the guarantees allow (issue 15).

``GET /patients/{id}`` and ``GET /patients`` are one statement each: a data-modifying CTE that writes
the audit row and returns the patient(s) as compact JSON built by PostgreSQL (``json_object``), run
in autocommit mode, so the read and its audit row are one implicit transaction and pg8000 sends no
separate BEGIN or COMMIT. Registration is three: ``BEGIN`` with the birth-date lock and the MRN
sequence, one CTE that inserts the patient, its identifiers, name tokens, version, audit and
outbox rows and reads the probable duplicates (after the lock, so its snapshot sees every
committed registration of that birth date), then ``COMMIT`` (or ``ROLLBACK`` for a 409).

The statements run on a pg8000 connection of the process's pool (``shared.db.pool``), through
``shared.db.wire``, without SQLAlchemy: the pool's discard of a connection left out of step and the
transient-error → 503 mapping apply as to the ORM's statements, and a GET /patients/{id} loads no
SQLAlchemy at all (tests/unit/test_cold_imports.py). The fixed texts (read, registration) run as
statements prepared once per connection: one Bind/Execute/Sync exchange instead of pg8000's three
for an unnamed statement, and no parsing or planning per request. A search by name words alone is
prepared too (one text per query shape, ``prepared_rows``); other searches are pipelined
(``pipelined_rows``), planned for their values (``services.search.search_page`` says why). A
SQLAlchemy connection's ``do_execute`` hook (``shared.prepared``) sends ``PREPARED`` and
``PIPELINED`` statements the same way. The JSON is the document ``schemas.patients.Patient`` dumps
(``test_patient_sql.py`` compares them byte for byte); a read and a registration answer PostgreSQL's
text as the body, undecoded.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Any, NamedTuple

from shared.db import driver_connection, wire
from shared.errors import DuplicateIdentifier, NotFound, ProbableDuplicate
from shared.instants import utcnow
from shared.log import current_request_id
from shared.prepared import PIPELINED, PREPARED, install

if TYPE_CHECKING:
    import sqlalchemy as sa

    from shared.auth import Principal
    from shared.schemas.patients import PatientCreate


def dumps(doc: Any) -> str:
    """The compact JSON pydantic's ``model_dump_json`` writes (no spaces, UTF-8 as is)."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


@contextmanager
def autocommit() -> Iterator[sa.Connection]:
    """``db.driver_autocommit`` (a SQLAlchemy connection in the driver's autocommit mode) with the
    ``PREPARED`` and ``PIPELINED`` execution options (``shared.prepared``'s hook installed once)."""
    from shared.db.orm import driver_autocommit, get_engine  # noqa: PLC0415

    install(get_engine())
    with driver_autocommit() as conn:
        yield conn


def pipelined_rows(sql: str, params: Any) -> list[list[Any]]:
    """The rows of one statement (``%s`` placeholders) planned for its values and sent in one round
    trip, on a driver connection in autocommit mode: a search's statement without SQLAlchemy."""
    with driver_connection() as con:
        return wire.rows(con, sql, params, pipelined=True)


def prepared_rows(sql: str, params: Any) -> list[list[Any]]:
    """The rows of one statement of a query shape (``%s`` placeholders), prepared on the driver
    connection (among ``wire.MAX_PREPARED_SHAPED`` per connection), in autocommit mode: a search by
    name words (``services.search.runs_prepared``)."""
    with driver_connection() as con:
        return wire.rows(con, sql, params, shaped=True)


def _timestamp(col: str) -> str:
    """A timestamptz as pydantic writes an aware UTC datetime: ``…T01:02:03Z`` or ``…T01:02:03.120000Z``."""
    return (f"to_char({col} AT TIME ZONE 'UTC', CASE WHEN to_char({col}, 'US') = '000000' "
            """THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END)""")


def json_object(**fields: str) -> str:
    """SQL for a JSON object of ``fields`` (key → SQL expression), in this order and written compact:
    ``row_to_json`` of a one-row subselect writes ``{"k":v,"k2":v2}`` (``json_build_object`` writes
    ``{"k" : v, "k2" : v2}``), so the text is already the bytes the API answers. Its values are
    written as ``json_build_object`` writes them (the same conversion per type)."""
    columns = ", ".join(f'{expr} AS "{key}"' for key, expr in fields.items())
    return f"(SELECT row_to_json(o) FROM (SELECT {columns}) o)"


def json_array(element: str, source: str, order: str) -> str:
    """SQL for the JSON array of ``element`` (a ``json_object``) over the rows of ``source`` in
    ``order``, written compact (``array_to_json``; ``json_agg`` writes ``", "``); ``[]`` without rows."""
    return f"(SELECT coalesce(array_to_json(array_agg({element} ORDER BY {order})), '[]'::json) FROM {source})"


def patient_json(p: str, identifiers: str | None = None) -> str:
    """SQL for the Patient resource of row ``p`` (field order of ``schemas.patients.Patient``), as
    compact JSON (``json_object``). ``identifiers``: a JSON array expression; by default the
    patient's rows in the order the ORM relationship reads them (created_at, then physical order)."""
    if identifiers is None:
        identifiers = json_array(json_object(system="i.system", value="i.value", type="i.type"),
                                 f"patient_identifiers i WHERE i.patient_id = {p}.id", "i.created_at, i.ctid")
    # jsonb writes ", " between an array's elements: the lines as an array of their jsonb values
    lines = f"to_json(ARRAY(SELECT jsonb_array_elements(coalesce({p}.address -> 'line', '[]'::jsonb))))"
    address = (f"CASE WHEN {p}.address IS NULL OR jsonb_typeof({p}.address) = 'null' THEN NULL ELSE "
               + json_object(line=lines, city=f"{p}.address -> 'city'", state=f"{p}.address -> 'state'",
                             postal_code=f"{p}.address -> 'postal_code'", country=f"{p}.address -> 'country'")
               + " END")
    return json_object(
        id=f"{p}.id", mrn=f"{p}.mrn", status=f"{p}.status", merged_into=f"{p}.merged_into",
        name=json_object(family=f"{p}.family", given=f"coalesce(to_json({p}.given), '[]'::json)",
                         prefix=f"coalesce(to_json({p}.prefix), '[]'::json)",
                         suffix=f"coalesce(to_json({p}.suffix), '[]'::json)"),
        birth_date=f"to_char({p}.birth_date, 'YYYY-MM-DD')", sex=f"{p}.sex", identifiers=identifiers,
        phone=f"{p}.phone", email=f"{p}.email", address=address,
        preferred_language=f"{p}.preferred_language", timezone=f"{p}.timezone",
        communication=json_object(email=f"{p}.comm_email", sms=f"{p}.comm_sms"),
        version=f"{p}.version", created_at=_timestamp(f"{p}.created_at"), updated_at=_timestamp(f"{p}.updated_at"),
    )


_AUDIT_COLUMNS = "audit_log (at, principal, principal_id, action, patient_ids, request_id, outcome, details)"

# -- GET /patients/{id} ------------------------------------------------------------------------------

_READ = (
    "WITH p AS (SELECT * FROM patients WHERE id = %s::uuid), "
    f"a AS (INSERT INTO {_AUDIT_COLUMNS} "
    "SELECT %s::timestamptz, %s, %s::uuid, 'patient.read', ARRAY[p.id], %s, 'success', NULL FROM p) "
    f"SELECT {patient_json('p')}::text, p.version FROM p"
)


class Document(NamedTuple):
    """A patient document as the API answers it: the JSON text PostgreSQL wrote (compact, the bytes
    of the response body, never decoded here) and its version (the ETag)."""

    json: str
    version: int


def read_patient(principal: Principal, patient_id: uuid.UUID) -> Document:
    """The patient as the API's JSON document, with its ``patient.read`` audit row (one statement)."""
    with driver_connection() as con:
        found = wire.rows(con, _READ, (patient_id, utcnow(), principal.name, principal.key_id, current_request_id()),
                          prepared=True)
    if not found:
        raise NotFound("No patient with this id")
    return Document(*found[0])


# -- POST /patients ----------------------------------------------------------------------------------

@functools.cache
def _register_sql() -> str:
    """The registration CTE (built on first use: its duplicate rules come from ``services.duplicates``)."""
    from shared.services.duplicates import MAX_CANDIDATES, RULES, match_sql  # noqa: PLC0415

    # every rule, each checked only when this row's value for it is there (``guarded``)
    matches, reason = match_sql(RULES, lambda column: f"q.{column}", lambda column: f"pat.{column}", guarded=True)
    return (
        "WITH pat AS (INSERT INTO patients (id, mrn, status, family, given, prefix, suffix, family_norm, "
        "first_given_norm, birth_date, sex, phone, email, address, preferred_language, timezone, comm_email, comm_sms, "
        "source, version, created_at, updated_at) VALUES (%s::uuid, %s, 'active', %s, %s::text[], %s::text[], "
        "%s::text[], %s, %s, %s::date, %s, %s, %s, %s::jsonb, %s, %s, %s::boolean, %s::boolean, %s, 1, "
        "%s::timestamptz, %s::timestamptz) RETURNING *), "
        "wanted AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]) WITH ORDINALITY AS w(system, value, type, n)), "
        # ON CONFLICT DO NOTHING: the (system, value) constraint decides; a skipped row means a 409.
        "ident AS (INSERT INTO patient_identifiers (id, patient_id, system, value, type, created_at) "
        "SELECT gen_random_uuid(), pat.id, w.system, w.value, w.type, pat.created_at FROM pat, wanted w ORDER BY w.n "
        "ON CONFLICT (system, value) DO NOTHING RETURNING system, value, type), "
        "claimed AS (SELECT w.n, ident.system, ident.value, ident.type FROM ident "
        "JOIN wanted w ON w.system = ident.system AND w.value = ident.value), "
        "tok AS (INSERT INTO patient_name_tokens (patient_id, kind, token) "
        "SELECT pat.id, t.kind, t.token FROM pat, unnest(%s::text[], %s::text[]) AS t(kind, token) ON CONFLICT DO NOTHING), "
        # services.duplicates.find_duplicates, for a probe with this row's folded names, phone and e-mail.
        f"dup AS (SELECT q.id, q.created_at, {reason} AS reason "
        "FROM pat JOIN patients q ON q.birth_date = pat.birth_date AND q.status <> 'merged' AND q.id <> pat.id "
        f"AND {matches} "
        f"WHERE %s::boolean ORDER BY q.created_at, q.id LIMIT {MAX_CANDIDATES}), "
        "doc AS (SELECT {doc} AS body FROM pat), "
        "ver AS (INSERT INTO resource_versions (resource_type, resource_id, patient_id, version, change, snapshot, "
        "changed_at, changed_by, request_id, field_sources) SELECT 'patient', pat.id, pat.id, 1, 'create', "
        "doc.body::jsonb, %s::timestamptz, %s, %s, '{{}}'::jsonb FROM pat, doc), "
        f"aud AS (INSERT INTO {_AUDIT_COLUMNS} "
        "SELECT %s::timestamptz, %s, %s::uuid, 'patient.create', ARRAY[pat.id], %s, 'success', NULL FROM pat), "
        "box AS (INSERT INTO outbox (id, source, type, subject, time, dataschema, data, traceparent, tracestate, "
        "created_at, attempts) SELECT %s::uuid, %s, %s, %s, %s::timestamptz, %s, %s::jsonb, %s, %s, %s::timestamptz, 0 "
        "FROM pat) "
        "SELECT doc.body::text, (SELECT count(*) FROM ident), "
        "(SELECT coalesce(json_agg(json_build_object('patient_id', dup.id, 'reason', dup.reason) "
        "ORDER BY dup.created_at, dup.id), '[]'::json) FROM dup) FROM doc"
    ).format(doc=patient_json("pat", identifiers=json_array(
        json_object(system="c.system", value="c.value", type="c.type"), "claimed c", "c.n")))


def _lock_and_mrn(birth_date: date) -> str:
    """``BEGIN``, the birth-date lock of ``services.duplicates.lock_birth_date`` and the next MRN
    number, in one simple-protocol round trip. The key is inlined (the simple protocol takes no
    parameters): an integer computed from the date, so the text holds no birth date."""
    if not isinstance(birth_date, date):
        raise TypeError("birth_date must be a date")
    from shared.services.duplicates import lock_key  # noqa: PLC0415

    key = lock_key(birth_date)
    return f"BEGIN; SELECT pg_advisory_xact_lock({int(key)}::bigint), nextval('patient_mrn_seq')"


class Registered(NamedTuple):
    """A registered patient as the API answers it: the document's JSON text as PostgreSQL wrote it
    (compact, the bytes of the 201's body, never decoded here), its id (the Location) and version."""

    json: str
    id: uuid.UUID
    version: int


def register_patient(principal: Principal, data: PatientCreate, *, origin: str = "api",
                     reject_duplicates: bool = False) -> dict[str, Any]:
    """`register`'s document, decoded (for callers that read its fields)."""
    return json.loads(register(principal, data, origin=origin, reject_duplicates=reject_duplicates).json)  # type: ignore[no-any-return]


def register(principal: Principal, data: PatientCreate, *, origin: str = "api",
             reject_duplicates: bool = False) -> Registered:
    """Register a patient (``services.patients.register_patient``'s rules and rows, three statements);
    returns the API's JSON document as its text. 409s as there: an identifier owned by another patient
    first, then probable duplicates unless allowed. Publishing the outbox row waits for the commit."""
    from shared.events import catalog  # noqa: PLC0415
    from shared.events.outbox import event_source  # noqa: PLC0415
    from shared.mrn import MRN_SYSTEM, luhn_check_digit  # noqa: PLC0415
    from shared.normalize import fold_key  # noqa: PLC0415
    from shared.services.name_index import name_tokens  # noqa: PLC0415
    from shared.telemetry.tracecontext import current_traceparent, current_tracestate  # noqa: PLC0415

    name = data.name
    now = utcnow()
    patient_id = uuid.uuid4()
    event_id = uuid.uuid4()
    request_id = current_request_id()
    tokens = sorted(name_tokens(name.family, name.given))
    with driver_connection() as con:
        number = str(wire.simple(con, _lock_and_mrn(data.birth_date)).rows[0][1])
        mrn = number + luhn_check_digit(number)
        wanted = [(MRN_SYSTEM, mrn, "MR")] + [(i.system, i.value, i.type) for i in data.identifiers]
        event = catalog.PatientRegistered(patient_id=patient_id, version=1, origin=origin)  # type: ignore[arg-type]
        params = (
            patient_id, mrn, name.family, list(name.given), list(name.prefix), list(name.suffix), fold_key(name.family),
            fold_key(name.given[0]) if name.given else "", data.birth_date, data.sex, data.phone,
            str(data.email).lower() if data.email else None,
            # no address: JSON null, as the ORM's JSONB column stores None
            dumps(data.address.model_dump() if data.address else None),
            data.preferred_language, data.timezone, data.communication.email, data.communication.sms, origin, now, now,
            [w[0] for w in wanted], [w[1] for w in wanted], [w[2] for w in wanted],
            [t[0] for t in tokens], [t[1] for t in tokens],
            reject_duplicates,
            now, principal.name, request_id,
            now, principal.name, principal.key_id, request_id,
            event_id, event_source(), catalog.PATIENT_REGISTERED, str(patient_id), now,
            catalog.dataschema_for(catalog.PATIENT_REGISTERED), dumps(event.model_dump(mode="json")),
            current_traceparent(), current_tracestate(), now,
        )
        body, claimed, candidates = wire.rows(con, _register_sql(), params, prepared=True)[0]
        if claimed < len(wanted):
            wire.simple(con, "ROLLBACK")
            taken = {(i["system"], i["value"]) for i in json.loads(body)["identifiers"]}
            system, value = next((s, v) for s, v, _t in wanted if (s, v) not in taken)
            owner = next(iter(wire.rows(
                con, "SELECT patient_id FROM patient_identifiers WHERE system = %s AND value = %s", (system, value))),
                [None])[0]
            raise DuplicateIdentifier(
                "An identifier in the request already belongs to another patient",
                existing_patient_id=str(owner) if owner else None,
                identifier_system=system,
            )
        if candidates:
            wire.simple(con, "ROLLBACK")
            raise ProbableDuplicate(
                "Probable duplicates exist; review them, or send ?allow_duplicate=true to register anyway",
                candidate_ids=[c["patient_id"] for c in candidates],
                candidates=candidates,
            )
        wire.simple(con, "COMMIT")
    _publish([event_id])
    return Registered(body, patient_id, 1)


def _publish(ids: list[uuid.UUID]) -> None:
    """After the commit, as ``events.outbox.emit`` arranges for a unit of work."""
    from shared.events.publishing.after_commit import publish_after_commit  # noqa: PLC0415

    publish_after_commit(ids)
