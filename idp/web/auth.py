"""Sign-up, sign-in, sign-out, email verification and password reset pages."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from idp import i18n
from idp.extensions import csrf
from idp.security.headers import allow_return_to
from idp.services import (
    DomainError,
    bot_challenge,
    clients,
    directory,
    passwords,
    profile,
    recovery,
    registration,
    signin,
)
from idp.web import current, link_tokens, signin_flow
from idp.web.forms import ConfirmForm, ConfirmWithPasswordForm, EmailOnlyForm, LoginForm, NewPasswordForm, RegisterForm

bp = Blueprint("auth", __name__)
_REGISTERED_HERE = "registered_here"  # session: ids of the accounts registered in this browser

DEFAULT_NEXT = "/account/"


def safe_next(value: str | None) -> str | None:
    """A same-site relative path ("/..."), or None: never another site or a script URL."""
    if not value or not isinstance(value, str) or len(value) > 8192:
        return None
    if not value.startswith("/") or value.startswith("//") or value.startswith("/\\"):
        return None
    if "\\" in value or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def _next_from(form=None) -> str | None:
    candidate = form.next.data if form is not None and form.next.data else request.args.get("next")
    return safe_next(candidate)


def _password_hint() -> str:
    from flask import current_app

    n = current_app.config["IDP_SETTINGS"].password_min_length
    return _("At least %(n)d characters. Several everyday words together are easy to remember "
             "and hard to guess. No special characters are required.", n=n)


def _strength_text(password: str) -> str:
    labels = {0: _("very weak"), 1: _("weak"), 2: _("fair"), 3: _("good"), 4: _("strong")}
    return _("Estimated strength of what you typed: %(label)s.", label=labels[passwords.strength_hint(password[:100])])


@bp.post("/language")
@csrf.exempt
def language():
    """The language switcher on every page: remembered on this browser and, for a signed-in
    resident, in their profile. Only a signed-in resident's choice needs the CSRF token (it
    changes the account); a visitor's changes nothing but this browser's cookie."""
    user = current.current_user()
    if user is not None:
        csrf.protect()
    code = request.form.get("lang")
    if code not in i18n.LANGUAGES:
        abort(400)
    if user is not None:
        profile.set_locale(user, code, ip=current.client_ip())
    response = redirect(safe_next(request.form.get("next")) or url_for("auth.home"), 303)
    i18n.choose(code, response)
    return response


@bp.get("/client-logo/<client_id>")
def client_logo(client_id: str):
    """A department's logo, as registered (PNG or JPEG, checked on upload)."""
    from flask import Response, abort

    client = clients.find_client(client_id)
    if client is None or not client.logo:
        abort(404)
    return Response(client.logo, mimetype=client.logo_type, headers={
        "Cache-Control": "public, max-age=86400", "Content-Security-Policy": "default-src 'none'"})


@bp.get("/")
def home():
    return render_template("home.html", services=directory.listings(), categories=directory.CATEGORIES)


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if request.method == "GET":
        form.next.data = _next_from() or ""
    failure = None
    status = 200
    if form.validate_on_submit():
        result = signin.authenticate(form.email.data, form.password.data, current.client_ip(),
                                     device=signin_flow.device_id(),
                                     challenge=(form.bot_challenge.data, form.bot_solution.data))
        if result.must_reset:
            flash(_("This password is too common: it appears in lists of leaked passwords. Choose another."), "error")
            return render_template("auth/check_email.html", email_sent_for="reset", next="")
        if result.ok:
            target = signin_flow.finish_first_factor(result.user, amr=["pwd"],
                                                     next_url=_next_from(form) or DEFAULT_NEXT)
            return redirect(target or url_for("mfa.second_factor"), code=303)
        failure = _("The email address or password is not right.")
        if result.challenge_failed:
            failure = _("We are seeing unusual sign-in activity, so this browser must first finish a short "
                        "automatic check. Wait a moment, then sign in again. If it keeps failing (the check "
                        "needs JavaScript), use “Forgot your password?”: the link we email always works.")
            status = 429
        elif result.throttled:
            failure += " " + _("Too many attempts. Try again in %(n)d minutes.", n=result.retry_minutes)
            status = 429
        else:
            status = 401
    elif request.method == "POST":
        status = 400
    form.password.data = ""
    form.next.data = _next_from(form) or ""
    allow_return_to(form.next.data)
    asking = clients.from_authorize_url(form.next.data)
    return render_template("auth/login.html", form=form, failure=failure, next=form.next.data,
                           asking=asking[0] if asking else None, bot=bot_challenge.issue()), status


@bp.post("/logout")
def logout():
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template("error.html", title=_("Your form expired"),
                               message=_("For your safety the form could not be used. Go back, reload the page and try again.")), 400
    current.sign_out()
    return redirect(url_for("auth.signed_out"), code=303)


@bp.get("/signed-out")
def signed_out():
    return render_template("auth/signed_out.html")


@bp.route("/register", methods=["GET", "POST"])
def register():
    form = RegisterForm()
    if request.method == "GET":
        form.next.data = _next_from() or ""
    strength = None
    if form.validate_on_submit():
        try:
            created = registration.register(form.name.data, form.email.data, form.password.data,
                                            ip=current.client_ip(), locale=str(get_locale()))
        except DomainError as exc:
            field = {"invalid_email": form.email, "weak_password": form.password, "invalid_name": form.name}.get(exc.code)
            if field is None:
                raise
            field.errors = [*field.errors, exc.message]
        else:
            # Its link opened in this browser needs no password. Written either way, so a taken
            # address answers with the same headers as a new one.
            session[_REGISTERED_HERE] = [*session.get(_REGISTERED_HERE, [])[-4:], *([created] if created else [])]
            return render_template("auth/check_email.html", email_sent_for="register",
                                   next=_next_from(form) or "")
    if request.method == "POST" and form.password.data:
        strength = _strength_text(form.password.data)
    form.password.data = ""
    form.next.data = _next_from(form) or ""
    status = 400 if request.method == "POST" else 200
    return render_template("auth/register.html", form=form, password_hint=_password_hint(),
                           strength=strength, next=form.next.data), status


@bp.get("/verify-email/<token>")
def verify_email_link(token: str):
    if not registration.verification_link_valid(token):
        return _invalid_link("verify")
    return link_tokens.move_out_of_url("verify", token, "auth.verify_email")


def _known_accounts() -> list[int]:
    """Accounts this browser registered, or is signed in to: their verification needs no password."""
    user = current.current_user()
    return [*session.get(_REGISTERED_HERE, []), *([user.id] if user else [])]


def _confirm_page(with_password: bool, form, status: int = 200):
    return render_template("auth/confirm_link.html", form=form, kind="verify", with_password=with_password,
                           action=url_for("auth.verify_email_confirm")), status


@bp.get("/verify-email")
def verify_email():
    if not registration.verification_link_valid(link_tokens.held("verify")):
        return _invalid_link("verify")
    with_password = registration.needs_password(link_tokens.held("verify"), _known_accounts())
    return _confirm_page(with_password, ConfirmWithPasswordForm() if with_password else ConfirmForm())


@bp.post("/verify-email")
@bp.post("/verify-email/<token>")
def verify_email_confirm(token: str | None = None):
    raw = link_tokens.held("verify", token)
    with_password = registration.needs_password(raw, _known_accounts())
    form = ConfirmWithPasswordForm() if with_password else ConfirmForm()
    if not form.validate_on_submit():
        return _confirm_page(True, form, 400) if with_password and "csrf_token" not in form.errors \
            else _invalid_link("verify")
    try:
        registration.verify_email(raw, ip=current.client_ip(), known_accounts=_known_accounts(),
                                  password=form.password.data if with_password else None)
    except DomainError as exc:
        if exc.code == "invalid_link":
            return _invalid_link("verify")
        if exc.code != "bad_password":
            raise  # too many attempts: the error page, 429
        form.password.errors = [exc.message]
        return _confirm_page(True, form, 400)
    link_tokens.drop("verify")
    flash(_("Thank you: your email address is confirmed."), "success")
    return redirect(url_for("account.profile") if current.current_user() else url_for("auth.login"), code=303)


@bp.route("/verify-email/resend", methods=["GET", "POST"])
def resend_verification():
    form = EmailOnlyForm()
    if form.validate_on_submit():
        registration.resend_verification(form.email.data, ip=current.client_ip())
        return render_template("auth/check_email.html", email_sent_for="verify", next="")
    status = 400 if request.method == "POST" else 200
    return render_template("auth/resend.html", form=form), status


@bp.route("/forgot-password", methods=["GET", "POST"])
def forgot_password():
    form = EmailOnlyForm()
    if request.method == "GET":
        form.next.data = _next_from() or ""
    if form.validate_on_submit():
        recovery.request_reset(form.email.data, ip=current.client_ip())
        return render_template("auth/check_email.html", email_sent_for="reset", next=_next_from(form) or "")
    status = 400 if request.method == "POST" else 200
    return render_template("auth/forgot.html", form=form, next=_next_from(form) or ""), status


@bp.get("/reset-password/<token>")
def reset_password_link(token: str):
    if not recovery.reset_link_valid(token):
        return _invalid_link("reset")
    return link_tokens.move_out_of_url("reset", token, "auth.reset_password")


@bp.route("/reset-password", methods=["GET", "POST"])
@bp.post("/reset-password/<token>")
def reset_password(token: str | None = None):
    token = link_tokens.held("reset", token)
    if not recovery.reset_link_valid(token):
        return _invalid_link("reset")
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            recovery.reset_password(token, form.password.data, ip=current.client_ip())
        except DomainError as exc:
            if exc.code != "weak_password":
                return _invalid_link("reset")
            form.password.errors = [*form.password.errors, exc.message]
        else:
            link_tokens.drop("reset")
            if current.current_session():
                current.sign_out()
            flash(_("Your password was changed. Sign in with your new password."), "success")
            return redirect(url_for("auth.login"), code=303)
    form.password.data = form.confirm.data = ""
    status = 400 if request.method == "POST" else 200
    return render_template("auth/reset.html", form=form, password_hint=_password_hint()), status


@bp.get("/confirm-email/<token>")
def confirm_email_change_link(token: str):
    if not profile.email_change_link_valid(token):
        return _invalid_link("change")
    return link_tokens.move_out_of_url("change", token, "auth.confirm_email_change")


@bp.get("/confirm-email")
def confirm_email_change():
    if not profile.email_change_link_valid(link_tokens.held("change")):
        return _invalid_link("change")
    return render_template("auth/confirm_link.html", form=ConfirmForm(), kind="change",
                           action=url_for("auth.confirm_email_change_post"))


@bp.post("/confirm-email")
@bp.post("/confirm-email/<token>")
def confirm_email_change_post(token: str | None = None):
    if not ConfirmForm().validate_on_submit():
        return _invalid_link("change")
    try:
        profile.confirm_email_change(link_tokens.held("change", token), ip=current.client_ip())
    except DomainError:
        return _invalid_link("change")
    link_tokens.drop("change")
    flash(_("Your email address was changed."), "success")
    return redirect(url_for("account.profile") if current.current_user() else url_for("auth.login"), code=303)


def _invalid_link(kind: str):
    return render_template("auth/invalid_link.html", kind=kind), 400
