"""The small library every example department imports: sign-in with eCitizen Passport, server-side
sessions ended by back-channel logout, step-up to MFA, bearer-token APIs, department-to-department
calls, the shared page layout and a development server."""
from relying_party_examples.common.passport import ACR, Passport, csrf_token, passport
from relying_party_examples.common.serve import serve
from relying_party_examples.common.settings import Settings, SettingsError

__all__ = ["ACR", "Passport", "Settings", "SettingsError", "csrf_token", "passport", "serve"]
