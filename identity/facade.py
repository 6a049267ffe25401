"""What other packages may use of identity — the only identity module they import (an import contract checks it).

Modules are lent whole where callers use several of their functions under the module's name; the comment after each
says which. Anything not named here is identity's own and may change without notice.
"""

from __future__ import annotations

from identity import (
    clients,  # create, get, authenticate_basic, update_grants (catalog, orgs, push, core.cli, bench)
    keys,  # create_key, retire_key (core.cli)
    models,  # the wire shapes of enrolment, sign-in, 网证 and codes (bff, miniapp_api)
    people,  # load, id_index (affairs, bff)
    segments,  # person_ids (push)
    sessions,  # create, refresh, end, list_for, ... (bff, miniapp_api)
    stats,  # facts_after (orgs)
)
from identity.clients import Client
from identity.codes import service as codes  # issue_code (bench)
from identity.codes.qr import render_png, render_svg
from identity.codes.service import code_text_for, issue_code
from identity.credentials import (
    bindings,  # sign_in, bind, phone_matches, step_up (miniapp_api)
    sms,  # send_code, CODE_TTL, RESEND_AFTER (bff, miniapp_api)
)
from identity.credentials import service as credentials  # enrol, sign-ins, credentials, PIN (bff)
from identity.credentials.pin import check_pin, hash_pin
from identity.externals import SmsClient
from identity.legal import models as legal_models  # enterprises', handlers' and agents' wire shapes (bff)
from identity.legal import service as legal  # enterprises, handlers, agents (bff, affairs)
from identity.licences import service as licences  # my_licences, licence_detail, present, scan, card_png (bff)
from identity.licences.service import LicenceDetail, LicenceList, ScanResult, expiring_documents
from identity.numbers import valid_resident_id, valid_uscc
from identity.oidc import (
    authorization,  # load, approve, deny, AuthRequest (bff)
    tokens,  # revoke_for (bff)
)
from identity.oidc.repo import consents_of, withdraw_consent
from identity.oidc.scopes import SCOPE_ENTITLEMENT, SCOPE_TITLES_ZH
from identity.sessions import ACR_ORDER, Principal, authenticate

__all__ = [
    "ACR_ORDER",
    "SCOPE_ENTITLEMENT",
    "SCOPE_TITLES_ZH",
    "Client",
    "LicenceDetail",
    "LicenceList",
    "Principal",
    "ScanResult",
    "SmsClient",
    "authenticate",
    "authorization",
    "bindings",
    "check_pin",
    "clients",
    "code_text_for",
    "codes",
    "consents_of",
    "credentials",
    "expiring_documents",
    "hash_pin",
    "issue_code",
    "keys",
    "legal",
    "legal_models",
    "licences",
    "models",
    "people",
    "render_png",
    "render_svg",
    "segments",
    "sessions",
    "sms",
    "stats",
    "tokens",
    "valid_resident_id",
    "valid_uscc",
    "withdraw_consent",
]
