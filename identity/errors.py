"""Problem types of the identity domain (stable `type` slugs, English and Chinese titles)."""

from __future__ import annotations

from core.problems import ProblemError


def unprocessable(slug: str, title: str, title_zh: str, detail: str = "", field: str | None = None) -> ProblemError:
    """A well-formed request that the rules refuse (checksum, wrong code, failed face check...)."""
    return ProblemError(422, slug, title, title_zh, detail or title, field=field)


def unauthorized(detail: str = "sign in first") -> ProblemError:
    return ProblemError(
        401,
        "unauthorized",
        "Authentication required",
        "需要身份认证",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="szt"'},
    )


def forbidden(slug: str, title: str, title_zh: str, detail: str = "") -> ProblemError:
    return ProblemError(403, slug, title, title_zh, detail or title)


def conflict(slug: str, title: str, title_zh: str, detail: str = "") -> ProblemError:
    return ProblemError(409, slug, title, title_zh, detail or title)


FACE_RESULTS: dict[str, ProblemError] = {
    "not_same_person": unprocessable(
        "face-not-same-person",
        "The face does not match the registered person",
        "人脸与登记信息不是同一人",
        field="face_capture",
    ),
    "not_live": unprocessable("face-not-live", "Liveness check failed", "活体检测未通过", field="face_capture"),
    "mismatch": unprocessable(
        "identity-mismatch", "Name and ID number do not match the register", "姓名与身份证号不一致", field="id_number"
    ),
}
