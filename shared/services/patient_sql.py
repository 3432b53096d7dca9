"""The patient hot paths in as few round trips as the guarantees allow (issue 15).

``GET /patients/{id}`` and ``GET /patients`` are one statement each: a data-modifying CTE that writes
the audit row and returns the patient(s) as compact JSON built by PostgreSQL (``json_object``), run
in autocommit mode, so the read and its audit row are one implicit transaction and pg8000 sends no
separate BEGIN or COMMIT. Registration is two statements in one round trip, one implicit transaction
(``wire.transaction``): the birth-date lock, then one CTE that reads the identifiers another patient
holds and the probable duplicates (after the lock, so its snapshot sees every committed registration
of that birth date) and, when neither refuses the request, takes the MRN's number and inserts the
patient, its identifiers, name tokens, version, audit and outbox rows; the Sync commits (a refused
request wrote nothing).

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
from typing import TYPE_CHECKING, Any, NamedTuple

from shared.db import driver_connection, wire
from shared.errors import DuplicateIdentifier, NotFound, ProbableDuplicate
from shared.ids import uuid4
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

_LOCK = "SELECT pg_advisory_xact_lock(%s::bigint)"
# An identifier row whose patient was not inserted: the statement's sign of a lost race (_register_sql).
_IDENTIFIER_OWNER = "fk_patient_identifiers_patient_id_patients"


@functools.cache
def _register_sql() -> str:
    """The registration statement (built on first use: its duplicate rules come from
    ``services.duplicates``, the MRN's system from ``shared.mrn``).

    Its first CTEs only read, in the statement's snapshot (taken after ``_LOCK``): the request's
    identifiers another patient holds (``taken``) and the probable duplicates (``dup``, when they are
    to be refused). ``go`` is the request's row when neither stops it, else nothing, and every write
    hangs on it: the MRN's number (``nextval``, so a refused registration takes none), the
    identifiers (the MRN first), the patient, name tokens, version, audit and outbox rows. A refused
    registration writes nothing, and the statement says why; the Sync that follows commits either
    way. An identifier claimed by a transaction that commits after this snapshot is skipped by
    ``ON CONFLICT`` (which waits for that transaction); the patient is then not inserted, and the
    identifiers that were fail its foreign key when the statement ends (23503, ``_IDENTIFIER_OWNER``):
    nothing is committed. Not a unique violation: its DETAIL, which PostgreSQL logs, would carry the
    identifier's value; the foreign key's carries only this registration's new, random id."""
    from shared.mrn import MRN_SYSTEM, luhn_check_digit_sql  # noqa: PLC0415
    from shared.services.duplicates import MAX_CANDIDATES, RULES, match_sql  # noqa: PLC0415

    # every rule, each checked only when the request has a value for it (``guarded``)
    matches, reason = match_sql(RULES, lambda column: f"q.{column}", lambda column: f"v.{column}", guarded=True)
    return (
        "WITH v AS (SELECT %s::uuid AS id, %s::text AS family, %s::text[] AS given, %s::text[] AS prefix, "
        "%s::text[] AS suffix, %s::text AS family_norm, %s::text AS first_given_norm, %s::date AS birth_date, "
        "%s::text AS sex, %s::text AS phone, %s::text AS email, %s::jsonb AS address, %s::text AS preferred_language, "
        "%s::text AS timezone, %s::boolean AS comm_email, %s::boolean AS comm_sms, %s::text AS source, "
        "%s::timestamptz AS at, %s::text AS principal, %s::uuid AS principal_id, %s::text AS request_id, "
        "%s::boolean AS reject_duplicates), "
        "wanted AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]) WITH ORDINALITY AS w(system, value, type, n)), "
        "taken AS (SELECT w.n, w.system, i.patient_id FROM wanted w "
        "JOIN patient_identifiers i ON i.system = w.system AND i.value = w.value), "
        # services.duplicates.find_duplicates, for a probe with the request's folded names, phone and e-mail.
        f"dup AS (SELECT q.id, q.created_at, {reason} AS reason "
        "FROM v JOIN patients q ON q.birth_date = v.birth_date AND q.status <> 'merged' "
        f"AND {matches} "
        f"WHERE v.reject_duplicates ORDER BY q.created_at, q.id LIMIT {MAX_CANDIDATES}), "
        "go AS (SELECT * FROM v WHERE NOT EXISTS (SELECT FROM taken) AND NOT EXISTS (SELECT FROM dup)), "
        "num AS (SELECT nextval('patient_mrn_seq')::text AS n FROM go), "
        f"mrn AS (SELECT num.n || {luhn_check_digit_sql('num.n')} AS value FROM num), "
        f"ids AS (SELECT 0::bigint AS n, '{MRN_SYSTEM}'::text AS system, mrn.value, 'MR'::text AS type FROM mrn "
        "UNION ALL SELECT n, system, value, type FROM wanted), "
        # The identifiers first (the patient's id is the request's): one a registration committing after
        # this snapshot holds is skipped, and then the patient is not inserted (below).
        "ident AS (INSERT INTO patient_identifiers (id, patient_id, system, value, type, created_at) "
        "SELECT gen_random_uuid(), go.id, ids.system, ids.value, ids.type, go.at FROM go, ids ORDER BY ids.n "
        "ON CONFLICT (system, value) DO NOTHING RETURNING system, value, type), "
        "pat AS (INSERT INTO patients (id, mrn, status, family, given, prefix, suffix, family_norm, "
        "first_given_norm, birth_date, sex, phone, email, address, preferred_language, timezone, comm_email, comm_sms, "
        "source, version, created_at, updated_at) SELECT go.id, mrn.value, 'active', go.family, go.given, go.prefix, "
        "go.suffix, go.family_norm, go.first_given_norm, go.birth_date, go.sex, go.phone, go.email, go.address, "
        "go.preferred_language, go.timezone, go.comm_email, go.comm_sms, go.source, 1, go.at, go.at FROM go, mrn "
        "WHERE (SELECT count(*) FROM ident) = (SELECT count(*) FROM ids) RETURNING *), "
        "claimed AS (SELECT ids.n, ident.system, ident.value, ident.type FROM ident "
        "JOIN ids ON ids.system = ident.system AND ids.value = ident.value), "
        "tok AS (INSERT INTO patient_name_tokens (patient_id, kind, token) "
        "SELECT pat.id, t.kind, t.token FROM pat, unnest(%s::text[], %s::text[]) AS t(kind, token) ON CONFLICT DO NOTHING), "
        "doc AS (SELECT {doc} AS body FROM pat), "
        "ver AS (INSERT INTO resource_versions (resource_type, resource_id, patient_id, version, change, snapshot, "
        "changed_at, changed_by, request_id, field_sources) SELECT 'patient', pat.id, pat.id, 1, 'create', "
        "doc.body::jsonb, go.at, go.principal, go.request_id, '{{}}'::jsonb FROM pat, doc, go), "
        f"aud AS (INSERT INTO {_AUDIT_COLUMNS} "
        "SELECT go.at, go.principal, go.principal_id, 'patient.create', ARRAY[pat.id], go.request_id, 'success', NULL "
        "FROM pat, go), "
        "box AS (INSERT INTO outbox (id, source, type, subject, time, dataschema, data, traceparent, tracestate, "
        "created_at, attempts) SELECT %s::uuid, %s, %s, pat.id::text, go.at, %s, %s::jsonb, %s, %s, go.at, 0 "
        "FROM pat, go) "
        "SELECT (SELECT body::text FROM doc), "
        "(SELECT json_agg(json_build_object('system', taken.system, 'patient_id', taken.patient_id) ORDER BY taken.n) "
        "FROM taken), "
        "(SELECT coalesce(json_agg(json_build_object('patient_id', dup.id, 'reason', dup.reason) "
        "ORDER BY dup.created_at, dup.id), '[]'::json) FROM dup)"
    ).format(doc=patient_json("pat", identifiers=json_array(
        json_object(system="c.system", value="c.value", type="c.type"), "claimed c", "c.n")))


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
    """Register a patient (``services.patients.register_patient``'s rules and rows): the birth date's
    lock and ``_register_sql`` as one implicit transaction in one round trip (``wire.transaction``).
    Returns the API's JSON document as its text. 409s as there: an identifier owned by another patient
    first, then probable duplicates unless allowed. Publishing the outbox row waits for the commit."""
    from shared.events import catalog  # noqa: PLC0415
    from shared.events.outbox import event_source  # noqa: PLC0415
    from shared.normalize import fold_key  # noqa: PLC0415
    from shared.services.duplicates import lock_key  # noqa: PLC0415
    from shared.services.name_index import name_tokens  # noqa: PLC0415
    from shared.telemetry.tracecontext import current_traceparent, current_tracestate  # noqa: PLC0415

    name = data.name
    patient_id = uuid4()
    event_id = uuid4()
    tokens = sorted(name_tokens(name.family, name.given))
    wanted = [(i.system, i.value, i.type) for i in data.identifiers]
    event = catalog.PatientRegistered(patient_id=patient_id, version=1, origin=origin)  # type: ignore[arg-type]
    params = (
        patient_id, name.family, list(name.given), list(name.prefix), list(name.suffix), fold_key(name.family),
        fold_key(name.given[0]) if name.given else "", data.birth_date, data.sex, data.phone,
        str(data.email).lower() if data.email else None,
        # no address: JSON null, as the ORM's JSONB column stores None
        dumps(data.address.model_dump() if data.address else None),
        data.preferred_language, data.timezone, data.communication.email, data.communication.sms, origin,
        utcnow(), principal.name, principal.key_id, current_request_id(), reject_duplicates,
        [w[0] for w in wanted], [w[1] for w in wanted], [w[2] for w in wanted],
        [t[0] for t in tokens], [t[1] for t in tokens],
        event_id, event_source(), catalog.PATIENT_REGISTERED, catalog.dataschema_for(catalog.PATIENT_REGISTERED),
        dumps(event.model_dump(mode="json")), current_traceparent(), current_tracestate(),
    )
    with driver_connection() as con:
        try:
            _locked, registered = wire.transaction(con, ((_LOCK, (lock_key(data.birth_date),)), (_register_sql(), params)))
        except Exception as exc:  # noqa: BLE001 — only a lost race for an identifier is ours to answer
            fields = wire.server_error_fields(exc)
            if fields is None or fields.get("n") != _IDENTIFIER_OWNER or not wanted:
                raise
            # an identifier claimed by a registration that committed after this one's snapshot
            raise _identifier_taken(con, wanted) from None
        body, taken, candidates = registered.rows[0]
    if taken:
        raise _identifier_owned(taken[0]["system"], taken[0]["patient_id"])
    if candidates:
        raise ProbableDuplicate(
            "Probable duplicates exist; review them, or send ?allow_duplicate=true to register anyway",
            candidate_ids=[c["patient_id"] for c in candidates],
            candidates=candidates,
        )
    if body is None:  # the statement writes unless it names a refusal: not a 201 without a patient
        raise RuntimeError("the registration statement wrote nothing and named no refusal")
    _publish([event_id])
    return Registered(body, patient_id, 1)


def _identifier_owned(system: str, owner: Any) -> DuplicateIdentifier:
    return DuplicateIdentifier(
        "An identifier in the request already belongs to another patient",
        existing_patient_id=str(owner) if owner else None,
        identifier_system=system,
    )


def _identifier_taken(con: Any, wanted: list[tuple[str, str, str]]) -> DuplicateIdentifier:
    """The 409 of a registration whose identifier another committed first: the first of the request's
    identifiers that another patient now holds, and its owner."""
    found = wire.rows(
        con, "SELECT w.system, i.patient_id FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS w(system, value, n) "
        "JOIN patient_identifiers i ON i.system = w.system AND i.value = w.value ORDER BY w.n LIMIT 1",
        ([w[0] for w in wanted], [w[1] for w in wanted]))
    system, owner = found[0] if found else (wanted[0][0], None)
    return _identifier_owned(system, owner)


def _publish(ids: list[uuid.UUID]) -> None:
    """After the commit, as ``events.outbox.emit`` arranges for a unit of work."""
    from shared.events.publishing.after_commit import publish_after_commit  # noqa: PLC0415

    publish_after_commit(ids)
