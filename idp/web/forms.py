"""The hosted pages' forms, for residents and staff (Flask-WTF: every one carries a CSRF token)."""
from __future__ import annotations

import unicodedata

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

MAX_PASSWORD_INPUT = 1024  # refused before any hashing (hashing DoS)


# Never part of a name, address or number: line and paragraph separators, zero-width and
# bidirectional controls (they disguise what is shown), and U+FFFD, which is what bytes that are
# not UTF-8 (overlong forms, lone surrogates) become when the request is decoded.
_INVISIBLE = frozenset("\u2028\u2029\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                       "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff\ufffd")


def _no_control_characters(_form, field) -> None:
    """Refuse C0/C1 control characters (CR, LF, NEL...) and the invisible characters above."""
    if field.data and any(unicodedata.category(ch) == "Cc" or ch in _INVISIBLE for ch in field.data):
        raise ValidationError(_l("Remove the line breaks or special characters."))


def _no_invisible_characters(_form, field) -> None:
    """For free text where line breaks are fine (notes): refuse other control characters and the
    invisible characters above (a right-to-left override would disguise the note to staff)."""
    if field.data and any((unicodedata.category(ch) == "Cc" and ch not in "\r\n\t") or ch in _INVISIBLE
                          for ch in field.data):
        raise ValidationError(_l("Remove the line breaks or special characters."))


def _email_field(label, autocomplete_required=True):
    return EmailField(label, validators=[DataRequired(_l("Enter your email address.")),
                                         Length(max=254, message=_l("Use at most 254 characters.")),
                                         _no_control_characters])


def _password_field(label, message):
    return PasswordField(label, validators=[DataRequired(message),
                                            Length(max=MAX_PASSWORD_INPUT, message=_l("This password is too long."))])


class LoginForm(FlaskForm):
    # An email address or a verified mobile number.
    email = StringField(_l("Email address or mobile number"),
                        validators=[DataRequired(_l("Enter your email address or mobile number.")),
                                    Length(max=254, message=_l("Use at most 254 characters.")),
                                    _no_control_characters])
    password = _password_field(_l("Password"), _l("Enter your password."))
    next = HiddenField()
    # The bot challenge (idp.services.bot_challenge): the puzzle and the page script's answer.
    bot_challenge = HiddenField()
    bot_solution = HiddenField()


class RegisterForm(FlaskForm):
    name = StringField(_l("Full name"), validators=[DataRequired(_l("Enter your name.")),
                                                    Length(max=200, message=_l("Use at most 200 characters.")),
                                                    _no_control_characters])
    email = _email_field(_l("Email address"))
    password = _password_field(_l("Create a password"), _l("Create a password."))
    next = HiddenField()


class EmailOnlyForm(FlaskForm):
    email = _email_field(_l("Email address"))
    next = HiddenField()


class ConfirmForm(FlaskForm):
    """A button that uses a link (so mail scanners that open links do not use them up)."""


class ConfirmWithPasswordForm(FlaskForm):
    """The confirm button of a registration's link opened in another browser: with the password."""
    password = _password_field(_l("Your password"), _l("Enter your password to confirm it is you."))


class NewPasswordForm(FlaskForm):
    password = _password_field(_l("New password"), _l("Create a new password."))
    confirm = PasswordField(_l("New password again"),
                            validators=[DataRequired(_l("Type the new password again.")),
                                        EqualTo("password", message=_l("The two passwords are not the same."))])


class NameForm(FlaskForm):
    name = StringField(_l("Full name"), validators=[DataRequired(_l("Enter your name.")),
                                                    Length(max=200, message=_l("Use at most 200 characters.")),
                                                    _no_control_characters])


class ChangeEmailForm(FlaskForm):
    new_email = _email_field(_l("New email address"))
    current_password = _password_field(_l("Current password"), _l("Enter your current password."))


class ChangePasswordForm(FlaskForm):
    current_password = _password_field(_l("Current password"), _l("Enter your current password."))
    password = _password_field(_l("New password"), _l("Create a new password."))
    confirm = PasswordField(_l("New password again"),
                            validators=[DataRequired(_l("Type the new password again.")),
                                        EqualTo("password", message=_l("The two passwords are not the same."))])


def _code_field(label, message, length):
    return StringField(label, validators=[DataRequired(message), Length(max=length, message=message)])


class CodeForm(FlaskForm):
    """A 6-digit code from an authenticator app or a text message."""

    code = _code_field(_l("6-digit code"), _l("Enter the 6-digit code."), 12)
    trust = BooleanField(_l("Trust this browser and skip this step here for a while (not on a shared or public device)"))


class RecoveryCodeForm(FlaskForm):
    code = _code_field(_l("Recovery code"), _l("Enter one of your recovery codes."), 20)
    trust = BooleanField(_l("Trust this browser and skip this step here for a while (not on a shared or public device)"))


class PhoneForm(FlaskForm):
    phone = StringField(_l("Mobile number"), validators=[DataRequired(_l("Enter your mobile number.")),
                                                        Length(max=32, message=_l("Use at most 32 characters.")),
                                                        _no_control_characters])


class EnrolCodeForm(FlaskForm):
    code = _code_field(_l("6-digit code"), _l("Enter the 6-digit code."), 12)


class PasskeyNameForm(FlaskForm):
    name = StringField(_l("Name for this passkey"), validators=[Length(max=64)])


class RevokeForm(FlaskForm):
    client_id = HiddenField(validators=[DataRequired(), Length(max=64)])


ROLE_LABELS = {"owner": _l("Owner"), "tenant": _l("Tenant"), "managing_agent": _l("Managing agent"),
               "company_representative": _l("Company representative")}


def _role_field():
    return SelectField(_l("Your role"), choices=[SelectChoice(value, label) for value, label in ROLE_LABELS.items()],
                       validators=[DataRequired(_l("Choose your role."))])


def _account_number_field():
    return StringField(_l("Account number"), validators=[DataRequired(_l("Enter the account number from your bill.")),
                                                         Length(max=40, message=_l("Use at most 40 characters.")),
                                                         _no_control_characters])


class LinkAccountForm(FlaskForm):
    account_number = _account_number_field()
    proof_kind = RadioField(_l("How will you prove it?"),
                            choices=[SelectChoice("linking_pin", _l("The linking PIN printed on the bill")),
                                     SelectChoice("id_number", _l("The account holder's South African ID number"))],
                            default="linking_pin", validators=[DataRequired(_l("Choose a proof."))])
    proof = PasswordField(_l("PIN or ID number"), validators=[DataRequired(_l("Enter the PIN or the ID number.")),
                                                             Length(max=32, message=_l("Use at most 32 characters."))])
    role = _role_field()


class LinkRequestForm(FlaskForm):
    account_number = _account_number_field()
    role = _role_field()
    document = FileField(_l("Supporting document (PDF, PNG or JPEG)"))
    note = TextAreaField(_l("Anything the city should know (optional)"),
                         validators=[Length(max=500, message=_l("Use at most 500 characters.")),
                                     _no_invisible_characters])


class ReasonForm(FlaskForm):
    """A staff action: the reason goes in the audit trail."""

    reason = StringField(_l("Reason"), validators=[DataRequired(_l("Give a reason.")),
                                                   Length(min=3, max=500, message=_l("Use 3 to 500 characters.")),
                                                   _no_control_characters])


class StaffEmailForm(ReasonForm):
    new_email = _email_field(_l("New email address"))


class RolesForm(ReasonForm):
    roles = SelectMultipleField(_l("Staff roles"), choices=[SelectChoice("support", _l("Support")),
                                                            SelectChoice("administrator", _l("Administrator"))])


class ClientForm(FlaskForm):
    name = StringField(_l("Department or application name"),
                       validators=[DataRequired(_l("Enter a name.")), Length(max=200), _no_control_characters])
    redirect_uris = TextAreaField(_l("Redirect URIs (one per line, exact)"),
                                  validators=[DataRequired(_l("Enter at least one redirect URI.")), Length(max=8000)])
    post_logout_redirect_uris = TextAreaField(_l("Post-logout redirect URIs (one per line)"),
                                              validators=[Length(max=8000)])
    backchannel_logout_uri = StringField(_l("Back-channel logout URI (optional)"), validators=[Length(max=2000)])
    purpose = StringField(_l("Purpose shown to residents (e.g. “Pay and view your municipal bills”)"),
                          validators=[Length(max=300), _no_control_characters])
    logo = FileField(_l("Logo (PNG or JPEG, at most 64 KB; optional)"))
    scopes = SelectMultipleField(_l("Scopes it may ask for"))
    first_party = BooleanField(_l("First-party (a city service that skips the consent page)"))
    public = BooleanField(_l("Public client (runs on the resident's device: no secret)"))
    listed = BooleanField(_l("Show it in the public services directory"))
    category = SelectField(_l("Directory category"), validate_choice=False)
    service_url = StringField(_l("Link for the directory (the department's home page)"), validators=[Length(max=2000)])
    keywords = StringField(_l("Words residents use for it, for search (e.g. “pothole leak streetlight”)"),
                           validators=[Length(max=500)])


def notification_form(topics: dict, channels: dict):
    """A form with one radio group per notification topic (email, text message or none)."""
    class NotificationForm(FlaskForm):
        pass

    for topic, label in topics.items():
        setattr(NotificationForm, topic, RadioField(
            label, choices=[SelectChoice(value, text) for value, text in channels.items()],
            validators=[DataRequired(_l("Choose how you want these messages."))]))
    return NotificationForm


class CloseAccountForm(FlaskForm):
    what = RadioField(_l("What should happen?"), choices=[
        SelectChoice("deactivate", _l("Close my account (I can reopen it for a while by resetting my password)")),
        SelectChoice("erase", _l("Erase my account and personal details for good (this cannot be undone)"))],
        default="deactivate", validators=[DataRequired(_l("Choose what should happen."))])
    current_password = _password_field(_l("Your password"), _l("Enter your password to confirm it is you."))
    confirm = BooleanField(_l("I understand that every city service I use will sign me out"),
                           validators=[DataRequired(_l("Tick the box to confirm."))])
