"""Which claims each scope releases."""
from __future__ import annotations

SCOPES = ("openid", "profile", "email", "phone", "municipal_accounts", "notification_preferences", "offline_access")
CLAIMS = ("sub", "name", "given_name", "family_name", "email", "email_verified", "locale", "phone_number",
          "phone_number_verified", "municipal_accounts", "notification_preferences", "acr", "amr", "auth_time", "sid")


def for_scope(user, scope: str) -> dict:
    """The resident's claims released under ``scope``."""
    scopes = set((scope or "").split())
    result: dict = {"sub": user.sub}
    if "profile" in scopes:
        result["name"] = user.name
        for name in ("given_name", "family_name", "locale"):
            if getattr(user, name):
                result[name] = getattr(user, name)
    if "email" in scopes:
        result["email"] = user.email
        result["email_verified"] = bool(user.email_verified)
    if "phone" in scopes and getattr(user, "phone_number", None):
        result["phone_number"] = user.phone_number
        result["phone_number_verified"] = user.phone_number_verified
    if "municipal_accounts" in scopes:
        from idp.services import municipal

        result["municipal_accounts"] = municipal.claim(user)
    if "notification_preferences" in scopes:
        from idp.services import notifications

        result["notification_preferences"] = notifications.claim(user)
    return result
