"""What the FHIR routes declare in the route table (OpenAPI): FHIR JSON, described loosely —
the FHIR specification is the schema; ``fhir.resources`` validates every response in the tests."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.fhir.params import FormatQuery


class _FhirResource(BaseModel):
    model_config = ConfigDict(extra="allow")


class FhirPatient(_FhirResource):
    """A FHIR R4 Patient (http://hl7.org/fhir/R4/patient.html)."""

    resourceType: Literal["Patient"]  # noqa: N815
    id: str
    meta: dict[str, str] = Field(description="versionId is the registry version (also the ETag).")


class FhirServiceRequest(_FhirResource):
    """A FHIR R4 ServiceRequest: a lab order (http://hl7.org/fhir/R4/servicerequest.html)."""

    resourceType: Literal["ServiceRequest"]  # noqa: N815
    id: str


class FhirObservation(_FhirResource):
    """A FHIR R4 Observation: a lab result (http://hl7.org/fhir/R4/observation.html)."""

    resourceType: Literal["Observation"]  # noqa: N815
    id: str


class FhirDiagnosticReport(_FhirResource):
    """A FHIR R4 DiagnosticReport: a lab order's report (http://hl7.org/fhir/R4/diagnosticreport.html)."""

    resourceType: Literal["DiagnosticReport"]  # noqa: N815
    id: str


class FhirBundle(_FhirResource):
    """A FHIR R4 Bundle of type searchset or history (http://hl7.org/fhir/R4/bundle.html)."""

    resourceType: Literal["Bundle"]  # noqa: N815
    type: Literal["searchset", "history"]
    total: int | None = Field(default=None, description="Absent with _total=none.")
    link: list[dict[str, str]] = Field(description="self, and next (with an opaque _cursor) when there is more.")


class FhirCapabilityStatement(_FhirResource):
    """A FHIR R4 CapabilityStatement (http://hl7.org/fhir/R4/capabilitystatement.html)."""

    resourceType: Literal["CapabilityStatement"]  # noqa: N815


class FhirOperationOutcome(_FhirResource):
    """A FHIR R4 OperationOutcome (http://hl7.org/fhir/R4/operationoutcome.html)."""

    resourceType: Literal["OperationOutcome"]  # noqa: N815


class BulkDataManifest(BaseModel):
    """The Bulk Data export manifest (https://hl7.org/fhir/uv/bulkdata/export.html#response---complete-status)."""

    transactionTime: str  # noqa: N815
    request: str
    requiresAccessToken: bool  # noqa: N815
    output: list[dict[str, str | int]] = Field(description="One entry per NDJSON file: type, url, count.")
    error: list[dict[str, str | int]]


class PatientCreateParams(FormatQuery):
    allow_duplicate: bool = Field(
        default=False, description="Register even when probable duplicates exist (409 names them otherwise).")
