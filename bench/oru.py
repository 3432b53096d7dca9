"""Realistic ORU^R01 (HL7 v2.5.1) result messages for the LIS benchmark: 10–20 segments each
(MSH, PID, PV1, ORC, OBR, 5–14 OBX, NTE), many patients, each patient's demographics consistent
across their messages. Synthetic data only."""

from __future__ import annotations

import base64
import json
import random
from datetime import datetime, timedelta, timezone

from bench.names import GIVEN, family_names

# (LOINC, display, unit, low, high, decimals)
ANALYTES = [
    ("2345-7", "Glucose", "mg/dL", 70, 99, 0), ("2823-3", "Potassium", "mmol/L", 3.5, 5.1, 1),
    ("2951-2", "Sodium", "mmol/L", 136, 145, 0), ("2075-0", "Chloride", "mmol/L", 98, 107, 0),
    ("2028-9", "Carbon dioxide", "mmol/L", 22, 29, 0), ("3094-0", "Urea nitrogen", "mg/dL", 7, 20, 0),
    ("2160-0", "Creatinine", "mg/dL", 0.6, 1.2, 2), ("17861-6", "Calcium", "mg/dL", 8.6, 10.3, 1),
    ("2885-2", "Protein", "g/dL", 6.0, 8.3, 1), ("1751-7", "Albumin", "g/dL", 3.5, 5.0, 1),
    ("1975-2", "Bilirubin total", "mg/dL", 0.1, 1.2, 1), ("6768-6", "Alkaline phosphatase", "U/L", 44, 147, 0),
    ("1742-6", "ALT", "U/L", 7, 56, 0), ("1920-8", "AST", "U/L", 10, 40, 0),
]
PANEL = ("24323-8", "Comprehensive metabolic panel")


def _ts(t: datetime) -> str:
    return t.strftime("%Y%m%d%H%M%S") + "+0000"


def _escape(text: str) -> str:
    return text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("&", "\\T\\").replace("~", "\\R\\")


class OruGenerator:
    def __init__(self, patients: int = 2000, seed: int = 3, run: str = "b") -> None:
        self.rng = random.Random(seed)
        self.run = run
        families = family_names(max(patients, 300), seed=seed)
        self.patients = []
        for i in range(patients):
            self.patients.append({
                "mrn": f"L{run}{i:07d}",
                "family": families[i % len(families)],
                "given": self.rng.choice(GIVEN),
                "birth": f"{self.rng.randint(1930, 2020)}{self.rng.randint(1, 12):02d}{self.rng.randint(1, 28):02d}",
                "sex": self.rng.choice("FMU"),
            })
        self.base = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)

    def message(self, n: int) -> bytes:
        rng = self.rng
        p = self.patients[rng.randrange(len(self.patients))]
        observed = self.base + timedelta(seconds=37 * n)
        control = f"{self.run}{n:09d}"
        segments = [
            f"MSH|^~\\&|LIS|CENTRAL_LAB|PATIENT_MGT|HOSPITAL|{_ts(observed + timedelta(minutes=30))}||ORU^R01^ORU_R01|{control}|P|2.5.1|||AL|NE||UNICODE UTF-8",
            f"PID|1||{p['mrn']}^^^HOSP^MR||{_escape(p['family'])}^{_escape(p['given'])}||{p['birth']}|{p['sex']}|||"
            f"{rng.randint(1, 999)} Main St^^Springfield^OR^97403^USA||^PRN^PH^^1^541^555{rng.randint(0, 9999):04d}",
            f"PV1|1|O|LAB^^^CENTRAL||||1234^Attending^Ada|||||||||||V{control}",
            f"ORC|RE|PLC{control}^EHR|FIL{control}^LIS||CM||||{_ts(observed)}|||1234^Ordering^Ada",
            f"OBR|1|PLC{control}^EHR|FIL{control}^LIS|{PANEL[0]}^{PANEL[1]}^LN|||{_ts(observed)}|||||||||1234^Ordering^Ada"
            f"||||||{_ts(observed + timedelta(minutes=25))}|||F",
        ]
        for i, (code, name, unit, low, high, decimals) in enumerate(rng.sample(ANALYTES, rng.randint(5, 14)), start=1):
            value = round(rng.uniform(low * 0.8, high * 1.2), decimals)
            text = f"{value:.{decimals}f}"
            flag = "L" if value < low else "H" if value > high else "N"
            segments.append(f"OBX|{i}|NM|{code}^{name}^LN||{text}|{unit}|{low}-{high}|{flag}|||F|||{_ts(observed)}")
        segments.append("NTE|1||Specimen received in good condition.")
        return ("\r".join(segments) + "\r").encode("utf-8")


def push_body(raw: bytes, message_id: str, publish_time: datetime, ordering_key: str | None = None) -> dict:
    """A Pub/Sub push request body (what a push subscription POSTs)."""
    message = {
        "data": base64.b64encode(raw).decode(),
        "messageId": message_id,
        "publishTime": publish_time.isoformat().replace("+00:00", "Z"),
        "attributes": {"source": "central-lab", "contentType": "application/hl7-v2"},
    }
    if ordering_key:
        message["orderingKey"] = ordering_key
    return {"message": message, "subscription": "projects/patient-mgt-local/subscriptions/lis-results-push"}


def push_lines(gen: OruGenerator, start: int, count: int) -> tuple[list[bytes], list[str]]:
    """``count`` messages and their push bodies as JSON lines (message ids unique per generator run)."""
    raws, lines = [], []
    now = datetime.now(timezone.utc)
    for n in range(start, start + count):
        raw = gen.message(n)
        raws.append(raw)
        lines.append(json.dumps(push_body(raw, f"{gen.run}-{n}", now), separators=(",", ":")))
    return raws, lines
