"""Validate what the FHIR view returns: ``fhir.resources`` (R4B models) plus the FHIR JSON rules
and required code bindings that those models do not enforce (they accept ``null``, ``[]``,
``{}`` and any string as a code)."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class

# Required bindings of the elements the view emits (path from the resource, codes allowed).
REQUIRED_CODES: dict[str, dict[str, frozenset[str]]] = {
    "Patient": {
        "gender": frozenset({"male", "female", "other", "unknown"}),
        "identifier.use": frozenset({"usual", "official", "temp", "secondary", "old"}),
        "name.use": frozenset({"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"}),
        "telecom.system": frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"}),
        "link.type": frozenset({"replaced-by", "replaces", "refer", "seealso"}),
    },
    "Observation": {
        "status": frozenset({"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                             "entered-in-error", "unknown"}),
        "valueQuantity.comparator": frozenset({"<", "<=", ">=", ">"}),
    },
    "ServiceRequest": {
        "status": frozenset({"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}),
        "intent": frozenset({"proposal", "plan", "directive", "order", "original-order", "reflex-order",
                             "filler-order", "instance-order", "option"}),
        "priority": frozenset({"routine", "urgent", "asap", "stat"}),
    },
    "Bundle": {
        "type": frozenset({"document", "message", "transaction", "transaction-response", "batch", "batch-response",
                           "history", "searchset", "collection"}),
        "entry.search.mode": frozenset({"match", "include", "outcome"}),
        "entry.request.method": frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}),
    },
    "OperationOutcome": {
        "issue.severity": frozenset({"fatal", "error", "warning", "information"}),
        "issue.code": frozenset({
            "invalid", "structure", "required", "value", "invariant", "security", "login", "unknown", "expired",
            "forbidden", "suppressed", "processing", "not-supported", "duplicate", "multiple-matches", "not-found",
            "deleted", "too-long", "code-invalid", "extension", "too-costly", "business-rule", "conflict",
            "transient", "lock-error", "no-store", "exception", "timeout", "incomplete", "throttled", "informational"}),
    },
    "CapabilityStatement": {
        "status": frozenset({"draft", "active", "retired", "unknown"}),
        "kind": frozenset({"instance", "capability", "requirements"}),
        "rest.mode": frozenset({"client", "server"}),
        "rest.resource.interaction.code": frozenset({"read", "vread", "update", "patch", "delete", "history-instance",
                                                     "history-type", "create", "search-type"}),
        "rest.resource.versioning": frozenset({"no-version", "versioned", "versioned-update"}),
        "rest.resource.searchParam.type": frozenset({"number", "date", "string", "token", "reference", "composite",
                                                     "quantity", "uri", "special"}),
    },
}


def _no_empty(value: Any, path: str) -> None:
    """FHIR JSON never holds null, empty strings, empty arrays or empty objects."""
    if value is None or (isinstance(value, (str, list, dict)) and len(value) == 0):
        raise AssertionError(f"empty or null element at {path}")
    if isinstance(value, dict):
        for key, item in value.items():
            _no_empty(item, f"{path}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _no_empty(item, f"{path}[{n}]")


def _values(node: Any, parts: list[str]) -> list[Any]:
    if not parts:
        return node if isinstance(node, list) else [node]
    if isinstance(node, list):
        return [v for item in node for v in _values(item, parts)]
    if isinstance(node, dict) and parts[0] in node:
        return _values(node[parts[0]], parts[1:])
    return []


def _codes(resource: dict[str, Any]) -> None:
    for path, allowed in REQUIRED_CODES.get(resource["resourceType"], {}).items():
        for value in _values(resource, path.split(".")):
            assert value in allowed, f"{resource['resourceType']}.{path} = {value!r} is not in its required value set"


def validate(resource: dict[str, Any]) -> Any:
    """The ``fhir.resources`` R4B model of ``resource`` (and of every resource a Bundle holds)."""
    _no_empty(resource, resource.get("resourceType", "?"))
    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    _codes(resource)
    if resource["resourceType"] == "Bundle":
        for entry in resource.get("entry", []):
            validate(entry["resource"])
            if resource["type"] == "history":
                assert entry["request"] and entry["response"], "history entries need request and response"
            if resource["type"] == "searchset":
                # matches, _include/_revinclude additions, and the OperationOutcome of search notes
                assert entry["search"]["mode"] in ("match", "include", "outcome")
                assert (entry["search"]["mode"] == "outcome") == (entry["resource"]["resourceType"] == "OperationOutcome")
    return model
