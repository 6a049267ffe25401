"""Server-side validation driven by a manifest's form schema: every error names its field."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from core.problems import FieldError, ProblemError
from identity.facade import valid_resident_id, valid_uscc

_PHONE = re.compile(r"^1[3-9]\d{9}$")
_REGION = re.compile(r"^32\d{4}$")  # GB/T 2260 codes of Jiangsu: the province serves its own residents
_ELICENCE = re.compile(r"^(idcard|driving|vehicle|hukou|business):[0-9a-f]{24}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_TEXT = 500


def _check(field: dict[str, Any], value: Any, elicence_ok: Callable[[str], bool], today: date) -> str | None:
    """The error message for one value, or None."""
    t = field["type"]
    if not isinstance(value, str):
        return "must be a string"
    if t == "text":
        if len(value) > min(field.get("max_length", MAX_TEXT), MAX_TEXT):
            return f"at most {field.get('max_length', MAX_TEXT)} characters"
        if "pattern" in field and not re.fullmatch(field["pattern"], value):
            return f"must match {field['pattern']}"
        if not value.strip():
            return "must not be blank"
    elif t == "id_number":
        if not valid_resident_id(value.upper()):
            return "not a valid GB 11643 citizen ID number"
    elif t == "uscc":
        if not valid_uscc(value):
            return "not a valid GB 32100 unified social credit code"
    elif t == "phone":
        if not _PHONE.match(value):
            return "not a mainland mobile number"
    elif t == "region":
        if not _REGION.match(value):
            return "not a Jiangsu GB/T 2260 region code"
    elif t == "date":
        try:
            d = date.fromisoformat(value)
        except ValueError:
            return "not an ISO 8601 date (YYYY-MM-DD)"
        if field.get("future") and d < today:
            return "must not be in the past"
    elif t == "elicence":
        if not _ELICENCE.match(value) or not value.startswith(field.get("licence", "") + ":"):
            return f"not a {field.get('licence', '')} e-licence reference"
        if not elicence_ok(value):
            return "this e-licence is not yours"
    elif t == "attachment":
        if not _UUID.match(value):
            return "not an attachment id"
    elif t == "enum":
        if value not in field.get("options", []):
            return "must be one of: " + ", ".join(field.get("options", []))
    return None


def validate(
    form_schema: list[dict[str, Any]],
    data: dict[str, Any],
    *,
    elicence_ok: Callable[[str], bool],
    today: date,
    partial: bool = False,
) -> dict[str, str]:
    """The cleaned form (declared fields only) or a 400 problem listing every bad field. `partial` (drafts and
    supplements) skips the required check."""
    errors: list[FieldError] = []
    known = {f["name"] for f in form_schema}
    for name in data:
        if name not in known:
            errors.append(FieldError(field=f"form.{name}"[:80], message="not a field of this application"))
    clean: dict[str, str] = {}
    for f in form_schema:
        value = data.get(f["name"])
        if value is None or value == "":
            if f["required"] and not partial:
                errors.append(FieldError(field=f"form.{f['name']}", message="required"))
            continue
        msg = _check(f, value, elicence_ok, today)
        if msg:
            errors.append(FieldError(field=f"form.{f['name']}", message=msg))
        else:
            clean[f["name"]] = value.upper() if f["type"] == "id_number" else value
    if errors:
        raise ProblemError(400, "validation", "Invalid request", "请求参数无效", errors[0].message, errors=errors[:30])
    return clean


def attachment_ids(form_schema: list[dict[str, Any]], clean: dict[str, str]) -> list[str]:
    return [clean[f["name"]] for f in form_schema if f["type"] == "attachment" and f["name"] in clean]
