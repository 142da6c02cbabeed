"""Authentication context class references this OP asserts (``acr``) and how they rank.

- password: a password alone (or a password on a browser the resident chose to trust).
- mfa: a password and a second factor (authenticator app, SMS code, recovery code).
- phishing-resistant: a passkey or security key (WebAuthn), alone with user verification or
  after the password.
"""
from __future__ import annotations

ACR_PASSWORD = "urn:ecitizen:acr:password"
ACR_MFA = "urn:ecitizen:acr:mfa"
ACR_PHISHING_RESISTANT = "urn:ecitizen:acr:phishing-resistant"

SUPPORTED = (ACR_PASSWORD, ACR_MFA, ACR_PHISHING_RESISTANT)
_RANK = {ACR_PASSWORD: 1, ACR_MFA: 2, ACR_PHISHING_RESISTANT: 3}
WEBAUTHN_AMR = {"hwk", "swk"}


def rank(acr: str | None) -> int:
    """How strong an acr is (0 for unknown or none)."""
    return _RANK.get(acr or "", 0)


def for_amr(amr: list[str]) -> str:
    """The acr that honestly describes a sign-in made with these methods (RFC 8176 values)."""
    methods = set(amr)
    if methods & WEBAUTHN_AMR and ("pwd" in methods or "user" in methods):
        return ACR_PHISHING_RESISTANT
    if "mfa" in methods:
        return ACR_MFA
    return ACR_PASSWORD


def required(acr_values: str | None, claims_acr: dict | None) -> str | None:
    """The weakest acr among those a client asked for that this OP knows, or None.

    ``acr_values`` is the request parameter; ``claims_acr`` the ``claims`` parameter's
    ``id_token.acr`` member ({"essential": true, "values": [...]} or {"value": ...})."""
    asked = list((acr_values or "").split())
    if isinstance(claims_acr, dict):
        if isinstance(claims_acr.get("values"), list):
            asked += [v for v in claims_acr["values"] if isinstance(v, str)]
        if isinstance(claims_acr.get("value"), str):
            asked.append(claims_acr["value"])
    known = [v for v in asked if v in _RANK]
    return min(known, key=rank) if known else None
