"""The hook where certificates become sealed PDFs. Until the e-seal issue lands this returns no document and the
Ministry is told the result without one; then `issue_no_record` renders the certificate and has eseal seal it
(eseal owns templates, keys and PAdES), returning the document's reference that the feedback carries."""

from __future__ import annotations

from core.resources import Resources


async def issue_no_record(res: Resources, *, apply_no: str, name: str, id_number: str) -> str | None:
    """The reference of the sealed 无犯罪记录证明 for `apply_no`, or None while no sealing service exists."""
    try:
        from eseal import service as eseal_service
    except ImportError:
        return None
    issue = getattr(eseal_service, "issue_certificate", None)
    if issue is None:
        return None
    ref: str = await issue(
        res, template="no_criminal_record", params={"name": name, "id_number": id_number, "apply_no": apply_no}
    )
    return ref
