"""The bench data set: a dedicated database with ≥ 100,000 patients.

A sample goes through the real service (``POST /patients`` on the running api), so every row,
identifier and search-index entry a registration writes exists in its real shape. The rest is
bulk SQL that clones the sample: each clone takes the family name (and its name-search tokens) of
one sample patient and the given names (and tokens) of another, a fresh MRN from the real sequence
(Luhn check digit from ``shared.mrn``), a unique phone, e-mail and identifier, and a spread of birth
dates. Columns are copied generically from the sample row, so a column another feature adds later
is carried along instead of breaking the seed.
"""

from __future__ import annotations

import json
import random
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from bench import client
from bench.names import family_names, given_names

SAMPLE_IDENTIFIER_SYSTEM = "urn:oid:2.16.840.1.113883.3.7777.1"


def sample_body(i: int, family: str, rng: random.Random) -> dict:
    return {
        "name": {"family": family, "given": given_names(rng)},
        "birth_date": f"{rng.randint(1930, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "sex": rng.choice(["female", "male", "other", "unknown"]),
        "phone": f"+1{3000000000 + i}",
        "email": f"sample{i}@example.org",
        "address": {"line": [f"{rng.randint(1, 9999)} {rng.choice(['Oak', 'Elm', 'Main', 'Pine'])} St"],
                    "city": "Springfield", "state": "OR", "postal_code": f"97{rng.randint(100, 999)}", "country": "US"},
        "identifiers": [{"system": SAMPLE_IDENTIFIER_SYSTEM, "value": f"H{i:08d}", "type": "PI"}],
    }


def seed_sample(port: int, token: str, count: int, concurrency: int = 8) -> int:
    """Register ``count`` patients through the api; returns how many were created (201)."""
    rng = random.Random(11)
    families = family_names(count)
    bodies = [sample_body(i, families[i], rng) for i in range(count)]
    headers = client.bearer(token)

    def post(chunk: list[dict]) -> int:
        import http.client  # noqa: PLC0415

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        created = 0
        for body in chunk:
            status, _ = client.request(port, "POST", "/patients?allow_duplicate=true", body=body, headers=headers, conn=conn)
            created += status == 201
        conn.close()
        return created

    chunks = [bodies[i::concurrency] for i in range(concurrency)]
    with ThreadPoolExecutor(concurrency) as pool:
        return sum(pool.map(post, chunks))


def register_welcome_patient(port: int, token: str) -> str:
    """Register, through the api, a patient who consented to e-mail (not to SMS, which quiet hours would
    defer at some times of day): a ``patient.registered`` event for it leads to one welcome e-mail
    (``bench.coldstart.welcome_probe``). The sample's patients consented to nothing. Returns its id."""
    body = {"name": {"family": "Welcomeprobe", "given": ["Bench"]}, "birth_date": "1980-02-29",
            "email": "welcome-probe@example.org", "communication": {"email": True, "sms": False}}
    status, answer = client.request(port, "POST", "/patients?allow_duplicate=true", body=body,
                                    headers=client.bearer(token))
    if status != 201:
        raise RuntimeError(f"registering the welcome probe's patient answered {status}")
    return str(json.loads(answer)["id"])


def _columns(conn: sa.Connection, table: str) -> list[str]:
    rows = conn.execute(sa.text(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = :t AND is_generated = 'NEVER' AND (identity_generation IS NULL OR identity_generation <> 'ALWAYS') "
        "ORDER BY ordinal_position"), {"t": table}).scalars().all()
    return list(rows)


def _clone_sql(conn: sa.Connection, table: str, alias: str, overrides: dict[str, str], from_clause: str) -> str:
    cols = _columns(conn, table)
    exprs = [overrides.get(c, f'{alias}."{c}"') for c in cols]
    names = ", ".join(f'"{c}"' for c in cols)
    return f'INSERT INTO {table} ({names}) SELECT {", ".join(exprs)} {from_clause}'


def clone(url: str, total: int) -> dict[str, float | int]:
    """Clone the sample until the database holds ``total`` patients."""
    from shared.models.patients import MRN_SYSTEM  # noqa: PLC0415
    from shared.mrn import luhn_check_digit  # noqa: PLC0415

    engine = sa.create_engine(url)
    started = time.perf_counter()
    with engine.begin() as conn:
        sample = conn.execute(sa.text("SELECT count(*) FROM patients")).scalar_one()
        missing = total - sample
        if missing <= 0:
            return {"patients": sample, "cloned": 0, "seconds": 0.0}
        numbers = conn.execute(sa.text("SELECT nextval('patient_mrn_seq') FROM generate_series(1, :n)"), {"n": missing}).scalars().all()
        mrns = [str(n) + luhn_check_digit(str(n)) for n in numbers]
        conn.execute(sa.text("CREATE TEMP TABLE bench_tpl ON COMMIT DROP AS "
                             "SELECT id, (row_number() OVER (ORDER BY id))::int - 1 AS k FROM patients"))
        conn.execute(sa.text(
            "CREATE TEMP TABLE bench_map ON COMMIT DROP AS "
            "SELECT u.n::int AS n, gen_random_uuid() AS new_id, a.id AS t1, b.id AS t2, u.mrn AS mrn "
            "FROM unnest(CAST(:mrns AS text[])) WITH ORDINALITY AS u(mrn, n) "
            "JOIN bench_tpl a ON a.k = mod(u.n, :k) "
            "JOIN bench_tpl b ON b.k = mod(u.n / :k + 37 * mod(u.n, :k), :k)"), {"mrns": mrns, "k": sample})
        conn.execute(sa.text(_clone_sql(conn, "patients", "a", {
            "id": "m.new_id", "mrn": "m.mrn",
            "given": "b.given", "first_given_norm": "b.first_given_norm",
            "birth_date": "DATE '1930-01-01' + mod(m.n * 7919, 32000)",
            "phone": "'+1' || (2000000000 + m.n)::text",
            "email": "'bench' || m.n || '@example.org'",
            "status": "'active'", "merged_into": "NULL", "version": "1",
            "created_at": "now()", "updated_at": "now()",
        }, "FROM bench_map m JOIN patients a ON a.id = m.t1 JOIN patients b ON b.id = m.t2")))
        conn.execute(sa.text(_clone_sql(conn, "patient_identifiers", "i", {
            "id": "gen_random_uuid()", "patient_id": "m.new_id", "created_at": "now()",
            "value": "CASE WHEN i.system = :mrn_system THEN m.mrn ELSE i.value || '-' || m.n END",
        }, "FROM bench_map m JOIN patient_identifiers i ON i.patient_id = m.t1")), {"mrn_system": MRN_SYSTEM})
        tokens = 0
        if "patient_name_tokens" in sa.inspect(conn).get_table_names():
            tokens = conn.execute(sa.text(_clone_sql(conn, "patient_name_tokens", "t", {"patient_id": "t.bench_pid"}, (
                "FROM (SELECT m.new_id AS bench_pid, t.* FROM bench_map m JOIN patient_name_tokens t "
                "ON t.patient_id = m.t1 AND t.kind = 'family' "
                "UNION ALL SELECT m.new_id, t.* FROM bench_map m JOIN patient_name_tokens t "
                "ON t.patient_id = m.t2 AND t.kind = 'given') t")))).rowcount
        count = conn.execute(sa.text("SELECT count(*) FROM patients")).scalar_one()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()
    return {"patients": count, "cloned": missing, "name_tokens_cloned": tokens,
            "seconds": round(time.perf_counter() - started, 1)}


def sample_ids(url: str, count: int) -> list[str]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT id::text FROM patients ORDER BY random() LIMIT :n"), {"n": count}).scalars().all()
    engine.dispose()
    return list(ids)


def search_queries(url: str, count: int, seed: int = 5) -> list[str]:
    """Query strings a registration desk types: a whole family name, a family prefix with a given
    prefix ("gar jo"), or a full family + given name."""
    from shared.normalize import tokens  # noqa: PLC0415

    rng = random.Random(seed)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT family, given FROM patients ORDER BY random() LIMIT :n"), {"n": count}).all()
    engine.dispose()
    out = []
    for family, given in rows:
        fam = tokens(family) or ["x"]
        giv = tokens(given[0]) if given else []
        roll = rng.random()
        if roll < 0.4 or not giv:
            name = fam[0]
        elif roll < 0.7:
            name = f"{fam[0][:rng.randint(3, 4)]} {giv[0][:rng.randint(2, 3)]}"
        else:
            name = f"{fam[0]} {giv[0]}"
        out.append(urllib.parse.urlencode({"name": name}))
    return out

