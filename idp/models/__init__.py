"""Database models. They hold data and its constraints, and know nothing of HTTP."""
from idp.models.action_token import ActionToken
from idp.models.approval import ApprovalRequest
from idp.models.audit import AuditEvent, AuditPurgePermit
from idp.models.client import Client
from idp.models.consent import Consent
from idp.models.factors import Device, RecoveryCode, TotpCredential, WebAuthnCredential
from idp.models.grant import AuthorizationCode
from idp.models.municipal import AccountLink, LinkRequest, MunicipalAccount
from idp.models.outbound import LogoutNotice, OutboundMail
from idp.models.session import UserSession
from idp.models.signing_key import SigningKey
from idp.models.token import Token
from idp.models.user import User

__all__ = [
    "AccountLink", "ActionToken", "ApprovalRequest", "AuditEvent", "AuditPurgePermit", "AuthorizationCode", "Client", "Consent", "Device", "LinkRequest", "LogoutNotice", "MunicipalAccount", "OutboundMail", "RecoveryCode",
    "SigningKey", "Token", "TotpCredential", "User", "UserSession", "WebAuthnCredential",
]
