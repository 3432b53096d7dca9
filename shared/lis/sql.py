"""The LIS fast path's statements as SQL text (``%s`` placeholders), without SQLAlchemy (issue 15).

Each is what the SQLAlchemy statement of the careful path (``shared.lis.ingest``, ``claims``,
``patients``, ``orders``, ``results``) sends, written once as text: the same rows and columns written,
the same rows read (tests/integration/lis/test_fast_sql.py runs both against PostgreSQL and compares).
Every text depends on the shape of its work only, never on its values, so each runs as a statement
prepared once per connection (``shared.db.wire``). Values that SQLAlchemy's JSONB columns would write
as JSON ``null`` when None (``attributes``, ``address``) are sent as JSON text for that reason.
"""

from __future__ import annotations

import functools
import re

_NAMED = re.compile(r"(?<![:\w]):([a-z_]+)\b")


def positional(text: str) -> tuple[str, tuple[str, ...]]:
    """A text with ``:name`` parameters as ``%s`` ones, and the names in the order they are sent."""
    names: list[str] = []

    def one(match: re.Match[str]) -> str:
        names.append(match.group(1))
        return "%s"

    return _NAMED.sub(one, text), tuple(names)


# -- lis_messages --------------------------------------------------------------------------------

ROW_COLUMNS = ("id", "received_at", "transport", "ce_source", "ce_id", "ce_type", "pubsub_message_id", "publish_time",
               "ordering_key", "subscription", "attributes", "part", "parts", "content_format", "raw", "raw_sha256",
               "raw_size", "status", "error_code", "warnings", "delivery_count", "attempts", "sending_application",
               "sending_facility", "control_id", "message_type", "message_time")
_ROW_CASTS = {"id": "uuid", "received_at": "timestamptz", "publish_time": "timestamptz", "attributes": "jsonb",
              "part": "integer", "parts": "integer", "raw": "bytea", "raw_size": "integer", "warnings": "text[]",
              "delivery_count": "integer", "attempts": "integer", "message_time": "timestamptz"}
# The claim's advisory lock (``claims.lock_clause``), its key one parameter: ``lis-control-id:<MSH-4>\x1f<MSH-10>``.
CLAIM_LOCK = "pg_advisory_xact_lock(hashtextextended(%s, 0)) IS NULL AS claim_locked"


def _key(pubsub: bool) -> str:
    return ("(ce_source, pubsub_message_id, part) WHERE pubsub_message_id IS NOT NULL" if pubsub
            else "(ce_source, ce_id, part) WHERE pubsub_message_id IS NULL")


@functools.cache
def insert_row(pubsub: bool, lock: bool) -> str:
    """``ingest._insert_row``: the new row (values in `ROW_COLUMNS` order), or nothing when the delivery's
    key is stored already; with `lock`, its RETURNING takes the claim's advisory lock (one more value)."""
    values = ", ".join(f"%s::{_ROW_CASTS[c]}" if c in _ROW_CASTS else "%s" for c in ROW_COLUMNS)
    returning = "id" + (f", {CLAIM_LOCK}" if lock else "")
    return (f"INSERT INTO lis_messages ({', '.join(ROW_COLUMNS)}, patient_ids) VALUES ({values}, '{{}}'::uuid[]) "
            f"ON CONFLICT {_key(pubsub)} DO NOTHING RETURNING {returning}")


@functools.cache
def redelivered(pubsub: bool) -> str:
    """A redelivery of a stored row (its key's values): the row locked, its counts bumped, its status read."""
    key = "ce_source = %s AND pubsub_message_id = %s AND part = %s AND pubsub_message_id IS NOT NULL" if pubsub \
        else "ce_source = %s AND ce_id = %s AND part = %s AND pubsub_message_id IS NULL"
    return ("UPDATE lis_messages SET delivery_count = delivery_count + 1, "
            "attempts = attempts + CASE WHEN status = 'failed' THEN 1 ELSE 0 END "
            f"WHERE {key} RETURNING id, status, received_at, publish_time")


# ``ingest._final_status``: processed_at, status, error_code, warnings, patient_id, patient_ids, duplicate_of, id.
FINAL_STATUS = (
    "UPDATE lis_messages SET processed_at = %s::timestamptz, status = %s, error_code = %s, warnings = %s::text[], "
    "patient_id = %s::uuid, patient_ids = %s::uuid[], duplicate_of = %s::uuid, "
    "lag_seconds = EXTRACT(epoch FROM %s::timestamptz - coalesce(message_time, publish_time, received_at)) "
    "WHERE id = %s::uuid")
FLUSHED = "SELECT 1 AS flushed"


# -- orders and results --------------------------------------------------------------------------

@functools.cache
def find_orders(placer: bool, filler: bool, lock: bool, placer_namespaces: int, filler_namespaces: int) -> str:
    """``orders._find_statement``: orders by placer and/or filler number within fixed numbers of namespace
    parameters (placer: namespaces…, number; filler: namespaces…, number), by id, locked with `lock`."""
    conditions = []
    if placer:
        conditions.append(f"(placer_namespace IN ({', '.join(['%s'] * placer_namespaces)}) AND placer_number = %s)")
    if filler:
        conditions.append(f"(filler_namespace IN ({', '.join(['%s'] * filler_namespaces)}) AND filler_number = %s)")
    return f"SELECT * FROM lab_orders WHERE {' OR '.join(conditions)} ORDER BY id" + (" FOR UPDATE" if lock else "")


# ``results._existing``: the order's results (order id, keys), or the patient's observations (patient id, keys).
ORDER_RESULTS = "SELECT * FROM lab_results WHERE order_id = %s::uuid AND result_key = ANY(%s::text[])"
PATIENT_OBSERVATIONS = ("SELECT * FROM lab_results WHERE order_id IS NULL AND patient_id = %s::uuid "
                        "AND result_key = ANY(%s::text[])")


# -- pending writes (shared.lis.pending) -----------------------------------------------------------

@functools.cache
def insert_rows(table: str, columns: tuple[str, ...], conflict: tuple[str, ...] | None, checked: bool) -> str:
    """Rows of `table` from one JSON parameter (their `columns`); `checked`: conflicting rows skipped (on
    `conflict`, else any constraint), the inserted ones returned."""
    names = ", ".join(f'"{c}"' for c in columns)
    text = (f"INSERT INTO {table} ({names}) SELECT {', '.join(f'r.{n}' for n in names.split(', '))} "
            f"FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb) AS r")
    if not checked:
        return text
    on = f"({', '.join(conflict)}) " if conflict else ""
    return f"{text} ON CONFLICT {on}DO NOTHING RETURNING {table}.\"{columns[0]}\""


@functools.cache
def update_row(table: str, columns: tuple[str, ...], bump_version: bool) -> str:
    """One row of `table` by id: `columns` from one JSON parameter (with ``id``), ``version + 1`` with `bump_version`."""
    sets = [f'"{c}" = r."{c}"' for c in columns]
    if bump_version:
        sets.append("version = t.version + 1")
    return (f"UPDATE {table} AS t SET {', '.join(sets)} "
            f"FROM jsonb_populate_record(NULL::{table}, %s::jsonb) AS r WHERE t.id = r.id")


# ``patients._lis_applied``: lis_applied_at, lis_applied_control_id, id.
LIS_APPLIED = "UPDATE patients SET lis_applied_at = %s::timestamptz, lis_applied_control_id = %s WHERE id = %s::uuid"
# ``provenance.sync_upsert``: patient id, stamps, sources (JSON), now.
STAMPS = ("INSERT INTO lis_patient_sync AS s (patient_id, field_stamps, field_sources, updated_at) "
          "VALUES (%s::uuid, %s::jsonb, %s::jsonb, %s::timestamptz) ON CONFLICT (patient_id) DO UPDATE SET "
          "field_stamps = s.field_stamps || excluded.field_stamps, "
          "field_sources = s.field_sources || excluded.field_sources, updated_at = excluded.updated_at")


# -- a new patient (patients._create_pending) --------------------------------------------------------

# The MRN's number; with the birth date, the duplicate lock of ``services.duplicates.lock_birth_date`` too.
MRN_NUMBER = "SELECT nextval('patient_mrn_seq') AS number"
MRN_NUMBER_LOCKED = ("SELECT nextval('patient_mrn_seq') AS number, "
                     "pg_advisory_xact_lock(%s::bigint) IS NULL AS locked")
PATIENT_COLUMNS = ("id", "mrn", "status", "family", "given", "prefix", "suffix", "family_norm", "first_given_norm",
                   "birth_date", "sex", "phone", "email", "address", "preferred_language", "timezone", "comm_email",
                   "comm_sms", "source", "lis_applied_at", "lis_applied_control_id", "version", "created_at",
                   "updated_at")
_PATIENT_CASTS = {"id": "uuid", "given": "text[]", "prefix": "text[]", "suffix": "text[]", "birth_date": "date",
                  "address": "jsonb", "comm_email": "boolean", "comm_sms": "boolean", "lis_applied_at": "timestamptz",
                  "version": "integer", "created_at": "timestamptz", "updated_at": "timestamptz"}
INSERT_PATIENT = (f"INSERT INTO patients ({', '.join(PATIENT_COLUMNS)}) VALUES ("
                  + ", ".join(f"%s::{_PATIENT_CASTS[c]}" if c in _PATIENT_CASTS else "%s" for c in PATIENT_COLUMNS) + ")")
# patient id, stamps, sources (JSON), now.
INSERT_SYNC = ("INSERT INTO lis_patient_sync (patient_id, field_stamps, field_sources, updated_at) "
               "VALUES (%s::uuid, %s::jsonb, %s::jsonb, %s::timestamptz)")
# ``versions.record_new_patient``: resource id, patient id, change, snapshot, changed at, by, request id, field sources.
INSERT_FIRST_VERSION = (
    "INSERT INTO resource_versions (resource_type, resource_id, patient_id, version, change, snapshot, changed_at, "
    "changed_by, request_id, field_sources) VALUES ('patient', %s::uuid, %s::uuid, 1, %s, %s::jsonb, %s::timestamptz, "
    "%s, %s, %s::jsonb)")


@functools.cache
def probable_duplicates(reasons: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """``services.duplicates.find_duplicates`` for a new patient, by the rules of ``reasons`` (those its
    values allow: ``duplicates.applicable``): the text (id, reason; by creation) and its parameters'
    names (the rules' columns, birth_date, exclude)."""
    from shared.services.duplicates import MAX_CANDIDATES, RULES, match_sql  # noqa: PLC0415 — pure

    matches, reason = match_sql([r for r in RULES if r.reason in reasons], lambda column: column,
                                lambda column: f":{column}")
    return positional(
        f"SELECT id, {reason} AS reason FROM patients "
        f"WHERE birth_date = CAST(:birth_date AS date) AND status <> 'merged' AND {matches} "
        f"AND id <> CAST(:exclude AS uuid) ORDER BY created_at, id LIMIT {MAX_CANDIDATES}")
