"""Second factors: the sign-in challenge after the password, step-up for departments that ask for
more, passwordless passkeys, and the resident's security page where factors are added and removed."""
from __future__ import annotations

import secrets
from functools import wraps

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.exceptions import RequestEntityTooLarge

from idp.oidc import acr as acr_rules
from idp.security.headers import allow_return_to
from idp.services import (
    DomainError,
    Throttled,
    audit,
    compromise,
    devices,
    factors,
    passkeys,
    phones,
    recovery_codes,
    security_mail,
    sms_codes,
    totp,
)
from idp.web import current, link_tokens, signin_flow
from idp.web.account import signed_in
from idp.web.auth import DEFAULT_NEXT, safe_next
from idp.web.forms import CodeForm, ConfirmForm, EnrolCodeForm, PasskeyNameForm, PhoneForm, RecoveryCodeForm

bp = Blueprint("mfa", __name__)

SMS_SIGNIN = "signin"


# --- the challenge after the password ------------------------------------------------------------

def challenge(view):
    """Only while a second-factor challenge is in progress; otherwise back to sign-in."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        found = signin_flow.pending()
        if found is None:
            flash(_("Your sign-in took too long or was already finished. Please sign in again."), "error")
            return redirect(url_for("auth.login"), code=303)
        return view(*found, *args, **kwargs)

    return wrapper


def _done(user, state, amr, trust=False):
    return redirect(signin_flow.complete(user, state, amr, trust=trust), code=303)


@bp.get("/login/second-factor")
@challenge
def second_factor(state, user):
    methods = signin_flow.allowed_methods(state, user)
    return render_template("mfa/choose.html", methods=methods, form=ConfirmForm(), state=state,
                           phone=phones.display(user.phone_number))


def _check_totp(user, code: str) -> None:
    if not totp.verify(user, code):
        raise DomainError("wrong_code", _("That code is not right, or was already used. "
                                          "Wait for the next code and try again."))


def _check_sms(user, code: str) -> None:
    # Only a code texted for this very sign-in (or step-up) counts.
    sms_codes.check(SMS_SIGNIN, user.id, code, binding=(session.get("mfa") or {}).get("txn", ""))


def _check_recovery_code(user, code: str) -> None:
    if not recovery_codes.use(user, code):
        raise DomainError("wrong_code", _("That recovery code is not right or was already used."))
    left = recovery_codes.remaining(user)
    security_mail.send(user, "recovery_code_used", ip=current.client_ip(),
                       detail=_("You have %(n)d recovery codes left.", n=left))
    flash(_("You have %(n)d recovery codes left. Make new ones on your security page if you are running out.",
            n=left), "success")


# kind -> (factor, form, check raising DomainError, amr value)
CODE_METHODS = {
    "totp": (factors.TOTP, CodeForm, _check_totp, "otp"),
    "sms": (factors.SMS, CodeForm, _check_sms, "sms"),
    "recovery": (factors.RECOVERY, RecoveryCodeForm, _check_recovery_code, "otp"),
}


def _code_step(state, user, kind: str):
    """A page asking for a code of one kind; right answers finish the challenge."""
    factor, form_class, check, amr = CODE_METHODS[kind]
    if factor not in signin_flow.allowed_methods(state, user):
        abort(404)
    form = form_class()
    status = 200
    if form.validate_on_submit():
        try:
            check(user, form.code.data)
        except DomainError as exc:
            audit.record("mfa.failure", outcome="failure", user_id=user.id, ip_address=current.client_ip(),
                         method=kind, reason=exc.code)
            form.code.errors = [exc.message]
            status = 429 if isinstance(exc, Throttled) else 400
        else:
            audit.record("mfa.success", user_id=user.id, ip_address=current.client_ip(), method=kind)
            return _done(user, state, [amr], trust=form.trust.data)
    elif request.method == "POST":
        status = 400
    form.code.data = ""
    allow_return_to(state["next"])
    return render_template("mfa/code.html", form=form, kind=kind, trust_days=_trust_days(),
                           phone=phones.display(user.phone_number), resend=ConfirmForm()), status


@bp.route("/login/second-factor/app", methods=["GET", "POST"])
@challenge
def with_app(state, user):
    return _code_step(state, user, "totp")


@bp.post("/login/second-factor/sms/send")
@challenge
def send_sms(state, user):
    if factors.SMS not in signin_flow.allowed_methods(state, user) or not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        sms_codes.send(SMS_SIGNIN, user.id, user.phone_number, ip=current.client_ip(), binding=state.get("txn", ""))
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("mfa.second_factor"), code=303)
    flash(_("We sent a code to %(phone)s.", phone=phones.display(user.phone_number)), "success")
    return redirect(url_for("mfa.with_sms"), code=303)


@bp.route("/login/second-factor/sms", methods=["GET", "POST"])
@challenge
def with_sms(state, user):
    return _code_step(state, user, "sms")


@bp.route("/login/second-factor/recovery", methods=["GET", "POST"])
@challenge
def with_recovery_code(state, user):
    return _code_step(state, user, "recovery")


def _trust_days() -> int:
    return current_app.config["IDP_SETTINGS"].trust_browser_days


# --- passkeys at sign-in (second factor, or alone) -----------------------------------------------

def _json_error(message: str, status: int = 400):
    return jsonify(error=message), status


CEREMONY_MAX_BYTES = 64 * 1024  # a passkey response is a few kilobytes


def _ceremony_body() -> dict:
    """The JSON object a passkey ceremony posts, or {} when the body is not one, or is too large
    to be one (refused before it is read, so a huge body costs nothing)."""
    request.max_content_length = CEREMONY_MAX_BYTES
    if (request.content_length or 0) > CEREMONY_MAX_BYTES:
        return {}
    try:
        body = request.get_json(silent=True)
    except RequestEntityTooLarge:
        return {}
    return body if isinstance(body, dict) else {}


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc):
    """A body over the application's limit (refused before the view): the passkey script gets
    its JSON error like for any other unusable response."""
    if request.endpoint in ("mfa.passkey_finish", "mfa.add_passkey"):
        return _json_error(_("That passkey could not be checked. Try again, or use another method."))
    return exc


@bp.post("/login/passkey/options")
def passkey_options():
    """Options for a passkey: as the second factor of the sign-in in progress, or (from the sign-in
    page, ``?mode=passwordless``) alone."""
    found = None if request.args.get("mode") == "passwordless" else signin_flow.pending()
    if found and factors.PASSKEY not in signin_flow.allowed_methods(*found):
        return _json_error(_("You have no passkey on this account."))
    flow = secrets.token_urlsafe(16)
    session["webauthn_flow"] = {"flow": flow, "second_factor": found is not None}
    return _options(passkeys.authentication_options(flow, found[1] if found else None))


def _options(options_json: str):
    return Response(options_json, mimetype="application/json")


@bp.post("/login/passkey")
def passkey_finish():
    started = session.pop("webauthn_flow", None) or {}
    body = _ceremony_body()
    if not started.get("flow") or not isinstance(body.get("credential"), dict):
        return _json_error(_("The passkey request expired. Try again."))
    found = signin_flow.pending() if started.get("second_factor") else None
    if started.get("second_factor") and found is None:
        return _json_error(_("Your sign-in took too long. Please sign in again."))
    try:
        result = passkeys.authenticate(started["flow"], body["credential"], found[1] if found else None)
    except DomainError as exc:
        audit.record("mfa.failure", outcome="failure", user_id=found[1].id if found else None,
                     ip_address=current.client_ip(), method="passkey", reason=exc.code)
        return _json_error(exc.message)
    audit.record("mfa.success", user_id=result.user.id, ip_address=current.client_ip(), method="passkey",
                 passwordless=found is None)
    if found:
        return jsonify(redirect=signin_flow.complete(result.user, found[0], result.amr))
    session.pop("mfa", None)  # a password sign-in left half-way is superseded
    next_url = safe_next(body.get("next")) or DEFAULT_NEXT
    amr = sorted(set(result.amr) | {"mfa"})  # possession plus the verified PIN or biometric
    return jsonify(redirect=signin_flow.finish_first_factor(result.user, amr=amr, next_url=next_url))


# --- step-up for a department that asked for a stronger sign-in ----------------------------------

@bp.get("/login/step-up")
@signed_in
def step_up():
    wanted = request.args.get("acr", "")
    next_url = safe_next(request.args.get("next")) or DEFAULT_NEXT
    if wanted not in acr_rules.SUPPORTED:
        abort(400)
    record, user = current.current_session()
    if acr_rules.rank(record.acr) >= acr_rules.rank(wanted):
        return redirect(next_url, code=303)
    if not factors.methods_for(user, wanted):
        session["after_enrolment"] = next_url
        return render_template("mfa/needs_factor.html", phishing_resistant=wanted == acr_rules.ACR_PHISHING_RESISTANT,
                               next=next_url)
    signin_flow.begin(user, mode=signin_flow.STEP_UP, first_amr=list(record.amr or []), next_url=next_url, acr=wanted)
    return redirect(url_for("mfa.second_factor"), code=303)


# --- "this wasn't me" ----------------------------------------------------------------------------

@bp.get("/not-me/<token>")
def not_me_link(token: str):
    if not compromise.link_valid(token):
        return render_template("auth/invalid_link.html", kind="not_me"), 400
    return link_tokens.move_out_of_url("not_me", token, "mfa.not_me")


@bp.get("/not-me")
def not_me():
    if not compromise.link_valid(link_tokens.held("not_me")):
        return render_template("auth/invalid_link.html", kind="not_me"), 400
    return render_template("mfa/not_me.html", form=ConfirmForm())


@bp.post("/not-me")
@bp.post("/not-me/<token>")
def not_me_confirm(token: str | None = None):
    if not ConfirmForm().validate_on_submit():
        return render_template("auth/invalid_link.html", kind="not_me"), 400
    try:
        compromise.report(link_tokens.held("not_me", token), ip=current.client_ip())
    except DomainError:
        return render_template("auth/invalid_link.html", kind="not_me"), 400
    link_tokens.drop("not_me")
    if current.current_session():
        current.sign_out()
    return render_template("mfa/not_me_done.html")


# --- the security page ---------------------------------------------------------------------------

recent_sign_in = current.needs_recent_sign_in("mfa.security")


def _user():
    return current.current_session()[1]


def _sid() -> str:
    return current.current_session()[0].sid


def _after_adding(codes: list[str] | None, message: str):
    flash(message, "success")
    if codes:
        session["new_recovery_codes"] = codes
        return url_for("mfa.show_recovery_codes")
    return session.pop("after_enrolment", None) or url_for("mfa.security")


@bp.get("/account/security")
@signed_in
def security():
    user = _user()
    return render_template("mfa/security.html", user=user, form=ConfirmForm(), totp_active=totp.active(user),
                           credentials=passkeys.list_for(user), codes_left=recovery_codes.remaining(user),
                           has_factor=factors.has_second_factor(user), sms_enabled=factors.sms_enabled(),
                           phone=phones.display(user.phone_number), trusted=devices.trusted_count(user))


@bp.post("/account/security/app/start")
@signed_in
@recent_sign_in
def start_app():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    user = _user()
    if totp.active(user):
        flash(_("You already have an authenticator app. Remove it first to set up another."), "error")
        return redirect(url_for("mfa.security"), code=303)
    totp.begin_enrolment(user)
    return redirect(url_for("mfa.enrol_app"), code=303)


@bp.route("/account/security/app", methods=["GET", "POST"])
@signed_in
@recent_sign_in
def enrol_app():
    user = _user()
    secret = totp.pending_secret(user)
    if secret is None:
        return redirect(url_for("mfa.security"), code=303)
    form = EnrolCodeForm()
    status = 200
    if form.validate_on_submit():
        if totp.confirm_enrolment(user, form.code.data):
            codes = factors.added(user, factors.TOTP, ip=current.client_ip(), keep_sid=_sid())
            return redirect(_after_adding(codes, _("Your authenticator app is set up.")), code=303)
        form.code.errors = [_("That code is not right. Check the time on your phone and try the newest code.")]
        status = 400
    elif request.method == "POST":
        status = 400
    form.code.data = ""
    uri = totp.provisioning_uri(user, secret)
    spaced = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return render_template("mfa/enrol_app.html", form=form, qr=totp.qr_svg(uri), secret=spaced), status


@bp.post("/account/security/app/remove")
@signed_in
@recent_sign_in
def remove_app():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if factors.remove(_user(), factors.TOTP, ip=current.client_ip(), keep_sid=_sid()):
        flash(_("The authenticator app was removed."), "success")
    return redirect(url_for("mfa.security"), code=303)


@bp.route("/account/security/phone", methods=["GET", "POST"])
@signed_in
@recent_sign_in
def add_phone():
    form = PhoneForm()
    status, headers = 200, {}
    if form.validate_on_submit():
        try:
            phones.start_verification(_user(), form.phone.data, ip=current.client_ip())
        except DomainError as exc:
            form.phone.errors = [exc.message]
            status = 429 if isinstance(exc, Throttled) else 400
            if getattr(exc, "retry_after", None):
                headers["Retry-After"] = str(exc.retry_after)
        else:
            return redirect(url_for("mfa.verify_phone"), code=303)
    elif request.method == "POST":
        status = 400
    return render_template("mfa/phone.html", form=form), status, headers


@bp.route("/account/security/phone/verify", methods=["GET", "POST"])
@signed_in
@recent_sign_in
def verify_phone():
    user = _user()
    number = phones.pending(user)
    if number is None and request.method == "GET":
        flash(_("That code has expired. Ask for a new one."), "error")
        return redirect(url_for("mfa.add_phone"), code=303)
    form = EnrolCodeForm()
    status = 200
    if form.validate_on_submit():
        try:
            phones.confirm(user, form.code.data, ip=current.client_ip())
        except DomainError as exc:
            form.code.errors = [exc.message]
            status = 429 if isinstance(exc, Throttled) else 400
        else:
            flash(_("Your mobile number is verified."), "success")
            return redirect(session.pop("after_enrolment", None) or url_for("mfa.security"), code=303)
    elif request.method == "POST":
        status = 400
    form.code.data = ""
    return render_template("mfa/verify_phone.html", form=form, phone=phones.display(number),
                           resend=ConfirmForm()), status


@bp.post("/account/security/phone/resend")
@signed_in
def resend_phone_code():
    user = _user()
    number = phones.pending(user)
    if not ConfirmForm().validate_on_submit() or number is None:
        return redirect(url_for("mfa.add_phone"), code=303)
    try:
        phones.start_verification(user, number, ip=current.client_ip())
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(_("We sent a new code to %(phone)s.", phone=phones.display(number)), "success")
    return redirect(url_for("mfa.verify_phone"), code=303)


@bp.post("/account/security/phone/remove")
@signed_in
@recent_sign_in
def remove_phone():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    factors.remove_phone(_user(), ip=current.client_ip(), keep_sid=_sid())
    flash(_("Your mobile number was removed."), "success")
    return redirect(url_for("mfa.security"), code=303)


@bp.post("/account/security/sms/on")
@signed_in
@recent_sign_in
def sms_on():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    user = _user()
    if not factors.sms_enabled() or not user.phone_number:
        abort(400)
    codes = factors.enable_sms(user, ip=current.client_ip(), keep_sid=_sid())
    return redirect(_after_adding(codes, _("Text message codes are on.")), code=303)


@bp.post("/account/security/sms/off")
@signed_in
@recent_sign_in
def sms_off():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if factors.remove(_user(), factors.SMS, ip=current.client_ip(), keep_sid=_sid()):
        flash(_("Text message codes are off."), "success")
    return redirect(url_for("mfa.security"), code=303)


@bp.get("/account/security/recovery-codes")
@signed_in
def show_recovery_codes():
    codes = session.pop("new_recovery_codes", None)
    next_url = session.pop("after_enrolment", None) or url_for("mfa.security")
    return render_template("mfa/recovery_codes.html", codes=codes, next=next_url)


@bp.post("/account/security/recovery-codes")
@signed_in
@recent_sign_in
def new_recovery_codes():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    user = _user()
    if not factors.has_second_factor(user):
        abort(400)
    session["new_recovery_codes"] = recovery_codes.generate(user)
    audit.record("mfa.recovery_codes_regenerated", user_id=user.id, ip_address=current.client_ip())
    security_mail.send(user, "recovery_codes_regenerated", ip=current.client_ip())
    return redirect(url_for("mfa.show_recovery_codes"), code=303)


@bp.get("/account/security/passkeys/new")
@signed_in
@recent_sign_in
def new_passkey():
    return render_template("mfa/new_passkey.html", form=PasskeyNameForm())


@bp.post("/account/security/passkeys/options")
@signed_in
@recent_sign_in
def passkey_registration_options():
    flow = secrets.token_urlsafe(16)  # the challenge works only in this browser session
    session["webauthn_registration"] = flow
    return _options(passkeys.registration_options(_user(), flow))


@bp.post("/account/security/passkeys")
@signed_in
@recent_sign_in
def add_passkey():
    body = _ceremony_body()
    if not isinstance(body.get("credential"), dict):
        return _json_error(_("The passkey request expired. Try again."))
    user = _user()
    name = body.get("name") if isinstance(body.get("name"), str) and body.get("name").strip() else _("Passkey")
    try:
        row = passkeys.register(user, body["credential"], name, session.pop("webauthn_registration", None) or "-")
    except DomainError as exc:
        return _json_error(exc.message)
    codes = factors.added(user, factors.PASSKEY, ident=row.id, ip=current.client_ip(), keep_sid=_sid())
    return jsonify(redirect=_after_adding(codes, _("Your passkey “%(name)s” is ready.", name=row.name)))


@bp.post("/account/security/passkeys/<int:credential_id>/remove")
@signed_in
@recent_sign_in
def remove_passkey(credential_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if not factors.remove(_user(), factors.PASSKEY, ident=credential_id, ip=current.client_ip(),
                          keep_sid=_sid()):
        abort(404)
    flash(_("The passkey was removed."), "success")
    return redirect(url_for("mfa.security"), code=303)


@bp.post("/account/security/browsers/forget")
@signed_in
def forget_browsers():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    count = devices.forget_trust(_user())
    audit.record("mfa.trusted_browsers_forgotten", user_id=_user().id, ip_address=current.client_ip(), count=count)
    flash(_("No browser is trusted any more: the second factor will be asked everywhere."), "success")
    return redirect(url_for("mfa.security"), code=303)
