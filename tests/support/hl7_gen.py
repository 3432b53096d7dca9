"""A small, realistic HL7 v2.5.1 generator for tests and the benchmark.

`oru_r01` writes a lab result message of 10-20 segments (MSH, PID, PV1, ORC, OBR, 4-12 OBX, NTE,
SPM) for a panel (CBC, BMP, lipids, …) with LOINC codes, units, reference ranges and abnormal
flags; names carry accents (UTF-8, MSH-18 ``UNICODE UTF-8``) and some notes carry escape
sequences. `adt` and `orm_o01` write the messages around it, and `stream` a mixed feed for many
patients: registrations, orders, preliminary then final results, corrections, demographic updates
— every message in it with its own MSH-10 and MSH-7 a few minutes after the one before, so that
the feed has one true order.

Everything is derived from a ``random.Random`` and a ``namespace`` (in MSH-4, identifiers and order
numbers), so the same seed gives the same feed under another namespace.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

FAMILIES = ["García", "Müller", "O'Brien", "Nguyen", "Smith", "Kowalski", "Dubois", "Rossi", "Andersson", "Okafor",
            "Ivanova", "Tanaka", "Silva", "Cohen", "Haddad", "Fernández-López", "Novák", "Jensen"]
GIVENS = ["Ana", "José", "Zoë", "Liam", "Amélie", "Noah", "Björn", "Maria", "Chen", "Aisha", "Luca", "Sofia",
          "Mateo", "Emma", "Yuki", "Olga", "Kwame", "Léa"]
STREETS = ["Main St", "Calle Mayor", "Hauptstraße", "Rue de la Paix", "Via Roma"]

# (LOINC, name, units, low, high, decimals)
PANELS: dict[str, tuple[str, str, list[tuple[str, str, str, float, float, int]]]] = {
    "CBC": ("58410-2", "CBC panel - Blood by Automated count", [
        ("6690-2", "Leukocytes [#/volume] in Blood", "10*3/uL", 4.0, 11.0, 1),
        ("789-8", "Erythrocytes [#/volume] in Blood", "10*6/uL", 4.2, 5.9, 2),
        ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 17.5, 1),
        ("4544-3", "Hematocrit [Volume Fraction] of Blood", "%", 36.0, 52.0, 1),
        ("787-2", "MCV [Entitic volume]", "fL", 80.0, 100.0, 1),
        ("785-6", "MCH [Entitic mass]", "pg", 27.0, 33.0, 1),
        ("786-4", "MCHC [Mass/volume]", "g/dL", 32.0, 36.0, 1),
        ("777-3", "Platelets [#/volume] in Blood", "10*3/uL", 150.0, 400.0, 0),
        ("770-8", "Neutrophils/100 leukocytes in Blood", "%", 40.0, 75.0, 1),
        ("736-9", "Lymphocytes/100 leukocytes in Blood", "%", 20.0, 45.0, 1),
    ]),
    "BMP": ("51990-0", "Basic metabolic panel - Blood", [
        ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70.0, 99.0, 0),
        ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 136.0, 145.0, 0),
        ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.1, 1),
        ("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", 98.0, 107.0, 0),
        ("2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "mmol/L", 22.0, 29.0, 0),
        ("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", 7.0, 20.0, 0),
        ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.3, 2),
        ("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", 8.6, 10.3, 1),
    ]),
    "LIPID": ("57698-3", "Lipid panel with direct LDL - Serum or Plasma", [
        ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 0.0, 200.0, 0),
        ("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", 0.0, 150.0, 0),
        ("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 40.0, 100.0, 0),
        ("18262-6", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay", "mg/dL", 0.0, 130.0, 0),
    ]),
    "HBA1C": ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", [
        ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.0, 5.6, 1),
        ("27353-2", "Glucose mean value [Mass/volume] in Blood Estimated from glycated hemoglobin", "mg/dL", 70.0, 126.0, 0),
    ]),
}

START = datetime(2026, 3, 2, 7, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class GenPatient:
    mrn: str
    authority: str
    family: str
    given: str
    middle: str
    birth_date: date
    sex: str  # M | F
    phone: str
    street: str
    city: str
    postal: str


@dataclass
class GenOrder:
    placer: str
    filler: str
    panel: str
    ordered_at: datetime
    values: dict[str, float] = field(default_factory=dict)


def escape(text: str) -> str:
    """HL7-escape a text value (| ^ ~ \\ & and line breaks)."""
    out = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("~", "\\R\\")
    return out.replace("&", "\\T\\").replace("\n", "\\.br\\")


def ts(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S") + "+0000"


def make_patient(rng: random.Random, namespace: str, number: int) -> GenPatient:
    born = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 90 * 365))
    return GenPatient(
        mrn=f"{namespace}{number:06d}", authority=f"HOSP-{namespace}", family=rng.choice(FAMILIES),
        given=rng.choice(GIVENS), middle=rng.choice(["", "A", "M", "J"]), birth_date=born, sex=rng.choice("MF"),
        phone=f"+1415555{rng.randrange(0, 10000):04d}", street=f"{rng.randrange(1, 999)} {rng.choice(STREETS)}",
        city=rng.choice(["Springfield", "Zürich", "São Paulo", "Köln", "Madrid"]), postal=f"{rng.randrange(10000, 99999)}",
    )


def msh(facility: str, control_id: str, when: datetime, kind: str, structure: str) -> str:
    return (f"MSH|^~\\&|LIS^2.16.840.1.113883.3.72.5.20^ISO|{facility}|EHR|HOSP|{ts(when)}||{kind}^{structure}|"
            f"{control_id}|P|2.5.1|||AL|NE||UNICODE UTF-8")


def pid(p: GenPatient, *, family: str | None = None, phone: str | None = None) -> str:
    name = f"{escape(family or p.family)}^{escape(p.given)}^{p.middle}"
    return (f"PID|1||{p.mrn}^^^{p.authority}^MR||{name}||{p.birth_date:%Y%m%d}|{p.sex}|||"
            f"{escape(p.street)}^^{escape(p.city)}^^{p.postal}^US||^PRN^PH^^^^^^^^^{phone or p.phone}")


def pv1(rng: random.Random) -> str:
    return f"PV1|1|O|LAB^{rng.randrange(1, 20)}^1||||1234^Welby^Marcus^^^Dr|||LAB||||||||OP|V{rng.randrange(10**6)}"


def adt(p: GenPatient, trigger: str, facility: str, control_id: str, when: datetime, **changes: str) -> bytes:
    structure = {"A08": "ADT_A01", "A31": "ADT_A05", "A28": "ADT_A05"}.get(trigger, "ADT_A01")
    segments = [msh(facility, control_id, when, f"ADT^{trigger}", structure), f"EVN|{trigger}|{ts(when)}",
                pid(p, **changes), f"PV1|1|O|LAB^1^1"]
    return ("\r".join(segments) + "\r").encode("utf-8")


def orm_o01(p: GenPatient, order: GenOrder, control: str, facility: str, control_id: str, when: datetime) -> bytes:
    code, name, _ = PANELS[order.panel]
    status = {"NW": "SC", "CA": "CA", "XO": "SC"}.get(control, "SC")
    segments = [
        msh(facility, control_id, when, "ORM^O01", "ORM_O01"), pid(p), "PV1|1|O|LAB^1^1",
        f"ORC|{control}|{order.placer}^EHR|{order.filler}^LIS||{status}||^^^{ts(order.ordered_at)}^^R||{ts(when)}",
        f"OBR|1|{order.placer}^EHR|{order.filler}^LIS|{code}^{escape(name)}^LN|||{ts(order.ordered_at)}",
    ]
    return ("\r".join(segments) + "\r").encode("utf-8")


def _value(rng: random.Random, low: float, high: float, decimals: int) -> float:
    spread = (high - low) or high or 1.0
    return round(rng.uniform(low - spread * 0.3, high + spread * 0.3), decimals)


def results_for(rng: random.Random, order: GenOrder) -> dict[str, float]:
    _code, _name, tests = PANELS[order.panel]
    return {loinc: _value(rng, low, high, dec) for loinc, _n, _u, low, high, dec in tests}


def oru_r01(p: GenPatient, order: GenOrder, status: str, facility: str, control_id: str, when: datetime,
            rng: random.Random, note: str | None = None) -> bytes:
    """ORU^R01 with one OBX per panel test (status P, F or C)."""
    code, name, tests = PANELS[order.panel]
    segments = [
        msh(facility, control_id, when, "ORU^R01", "ORU_R01"), pid(p), pv1(rng),
        f"ORC|RE|{order.placer}^EHR|{order.filler}^LIS||{'CM' if status in 'FC' else 'IP'}",
        f"OBR|1|{order.placer}^EHR|{order.filler}^LIS|{code}^{escape(name)}^LN|||{ts(order.ordered_at)}|||||||"
        f"{ts(order.ordered_at)}|Blood|1234^Welby^Marcus|||||||{ts(when)}||LAB|{status}",
    ]
    for i, (loinc, test, units, low, high, dec) in enumerate(tests, start=1):
        value = order.values[loinc]
        flag = "H" if value > high else "L" if value < low else "N"
        shown = f"{value:.{dec}f}"
        segments.append(f"OBX|{i}|NM|{loinc}^{escape(test)}^LN||{shown}|{escape(units)}|{low:g}-{high:g}|{flag}|||"
                        f"{status}|||{ts(order.ordered_at + timedelta(minutes=30))}")
    segments.append(f"NTE|1|L|{escape(note or 'Specimen received in good condition.')}")
    segments.append("NTE|2|L|Reference intervals: adult, sex-independent.")
    segments.append(f"SPM|1|{order.filler}S&LIS||122555007^Venous blood specimen^SCT|||||||||||||{ts(order.ordered_at)}")
    return ("\r".join(segments) + "\r").encode("utf-8")


@dataclass(frozen=True)
class Generated:
    raw: bytes
    kind: str  # e.g. ORU^R01/F
    patient_mrn: str


def stream(seed: int, count: int, namespace: str, *, patients: int | None = None) -> list[Generated]:
    """A feed of `count` messages in true order (MSH-7 strictly increasing, MSH-10 = position)."""
    rng = random.Random(seed)
    facility = f"LAB-{namespace}"
    people = [make_patient(rng, namespace, n) for n in range(patients or max(1, count // 8))]
    registered: set[str] = set()
    open_orders: list[tuple[GenPatient, GenOrder, str]] = []  # (patient, order, last status)
    when = START
    out: list[Generated] = []
    order_seq = 0
    while len(out) < count:
        when += timedelta(minutes=rng.randrange(1, 7))
        control_id = f"{namespace}{len(out) + 1:07d}"
        roll = rng.random()
        p = rng.choice(people)
        if p.mrn not in registered or roll < 0.10:
            trigger = "A04" if p.mrn not in registered else rng.choice(["A08", "A31"])
            changes = {}
            if trigger != "A04" and rng.random() < 0.5:
                changes = {"phone": f"+1415666{rng.randrange(0, 10000):04d}"}
            if trigger != "A04" and rng.random() < 0.2:
                changes["family"] = rng.choice(FAMILIES)
            registered.add(p.mrn)
            out.append(Generated(adt(p, trigger, facility, control_id, when, **changes), f"ADT^{trigger}", p.mrn))
        elif roll < 0.35 or not open_orders:
            order_seq += 1
            order = GenOrder(placer=f"P{namespace}{order_seq:06d}", filler=f"F{namespace}{order_seq:06d}",
                             panel=rng.choice(sorted(PANELS)), ordered_at=when)
            open_orders.append((p, order, "NW"))
            out.append(Generated(orm_o01(p, order, "NW", facility, control_id, when), "ORM^O01/NW", p.mrn))
        elif roll < 0.38:
            owner, order, _last = open_orders.pop(rng.randrange(len(open_orders)))
            out.append(Generated(orm_o01(owner, order, "CA", facility, control_id, when), "ORM^O01/CA", owner.mrn))
        else:
            index = rng.randrange(len(open_orders))
            owner, order, last = open_orders[index]
            status = {"NW": "P", "P": "F", "F": "C"}[last]
            if status == "P" and rng.random() < 0.4:
                status = "F"  # many results go straight to final
            if status == "C" or not order.values:
                order.values = results_for(rng, order)
            note = "Hemolysed sample\nrepeat advised | see policy" if rng.random() < 0.1 else None
            out.append(Generated(oru_r01(owner, order, status, facility, control_id, when, rng, note),
                                 f"ORU^R01/{status}", owner.mrn))
            if status == "C" or (status == "F" and rng.random() < 0.7):
                open_orders.pop(index)  # most finals are never corrected
            else:
                open_orders[index] = (owner, order, status)
    return out


def oru_batch(seed: int, count: int, namespace: str, patients: int = 50) -> list[bytes]:
    """`count` independent final ORU^R01 messages for `patients` patients (the benchmark's load)."""
    rng = random.Random(seed)
    people = [make_patient(rng, namespace, n) for n in range(patients)]
    facility = f"LAB-{namespace}"
    out = []
    for i in range(count):
        p = rng.choice(people)
        when = START + timedelta(seconds=i)
        order = GenOrder(placer=f"P{namespace}{i:07d}", filler=f"F{namespace}{i:07d}", panel=rng.choice(sorted(PANELS)),
                         ordered_at=when)
        order.values = results_for(rng, order)
        out.append(oru_r01(p, order, "F", facility, f"{namespace}{i:08d}", when, rng))
    return out
