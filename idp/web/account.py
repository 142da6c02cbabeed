"""The resident's account pages: profile, email, password, connected services."""
from __future__ import annotations

import json
from functools import wraps

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp.services import DomainError, Throttled, audit, closure, grants, privacy, registration
from idp.services import dashboard as dashboard_service
from idp.services import notifications as notification_service
from idp.services import profile as profile_service
from idp.services import sessions as session_service
from idp.web import current
from idp.web.auth import safe_next
from idp.web.forms import (
    ChangeEmailForm,
    ChangePasswordForm,
    CloseAccountForm,
    ConfirmForm,
    NameForm,
    RevokeForm,
    notification_form,
)

bp = Blueprint("account", __name__, url_prefix="/account")


def signed_in(view):
    """Only for a live session; otherwise to the sign-in page, coming back here afterwards."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if current.current_session() is None:
            target = request.full_path if request.query_string else request.path
            return redirect(url_for("auth.login", next=target))
        return view(*args, **kwargs)

    return wrapper


recent_sign_in = current.needs_recent_sign_in()


def _user():
    return current.current_session()[1]


def _sid():
    return current.current_session()[0].sid


def _attach(form, exc: DomainError, fields: dict) -> None:
    field = fields.get(exc.code)
    if field is None:
        field = next(iter(fields.values()))
    field.errors = [*field.errors, exc.message]


@bp.post("/keep-signed-in")
@signed_in
def keep_signed_in():
    """Restart the idle clock: the answer to the warning before an idle sign-out (a script gets
    204; a plain form goes back to the page it came from)."""
    if request.headers.get("X-Requested-With") == "fetch":
        return "", 204
    return redirect(safe_next(request.form.get("next")) or url_for("account.profile"), 303)


@bp.get("/")
@signed_in
def profile():
    return render_template("account/profile.html", user=_user(), form=ConfirmForm())


@bp.post("/verify-email/resend")
@signed_in
def resend_verification():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    user = _user()
    if not user.email_verified:
        registration.send_verification(user)
        audit.record("email.verification_resent", user_id=user.id, ip_address=current.client_ip())
    flash(_("We sent a new confirmation link to %(email)s.", email=user.email), "success")
    return redirect(url_for("account.profile"), code=303)


@bp.route("/name", methods=["GET", "POST"])
@signed_in
def edit_name():
    user = _user()
    form = NameForm()
    if request.method == "GET":
        form.name.data = user.name
    if form.validate_on_submit():
        try:
            profile_service.update_name(user, form.name.data, ip=current.client_ip())
        except DomainError as exc:
            _attach(form, exc, {"invalid_name": form.name})
        else:
            flash(_("Your name was saved."), "success")
            return redirect(url_for("account.profile"), code=303)
    status = 400 if request.method == "POST" else 200
    return render_template("account/name.html", form=form), status


@bp.route("/email", methods=["GET", "POST"])
@signed_in
@recent_sign_in
def change_email():
    user = _user()
    form = ChangeEmailForm()
    status = 200
    if form.validate_on_submit():
        try:
            profile_service.request_email_change(user, form.current_password.data, form.new_email.data,
                                         ip=current.client_ip())
        except DomainError as exc:
            _attach(form, exc, {"bad_password": form.current_password, "throttled": form.current_password,
                                "invalid_email": form.new_email, "same_email": form.new_email})
            status = 429 if isinstance(exc, Throttled) else 400
        else:
            return render_template("account/email_sent.html", new_email=form.new_email.data)
    elif request.method == "POST":
        status = 400
    form.current_password.data = ""
    return render_template("account/email.html", form=form, user=user), status


@bp.route("/password", methods=["GET", "POST"])
@signed_in
@recent_sign_in
def change_password():
    user = _user()
    form = ChangePasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            profile_service.change_password(user, form.current_password.data, form.password.data,
                                    keep_sid=_sid(), ip=current.client_ip())
        except DomainError as exc:
            _attach(form, exc, {"bad_password": form.current_password, "throttled": form.current_password,
                                "weak_password": form.password})
            status = 429 if isinstance(exc, Throttled) else 400
        else:
            flash(_("Your password was changed. Your other sessions were signed out."), "success")
            return redirect(url_for("account.profile"), code=303)
    elif request.method == "POST":
        status = 400
    form.current_password.data = form.password.data = form.confirm.data = ""
    from idp.web.auth import _password_hint

    return render_template("account/password.html", form=form, password_hint=_password_hint()), status


@bp.get("/sessions")
@signed_in
def signed_in_sessions():
    """Where the resident is signed in (browser, address, last used), this one first."""
    current_sid = _sid()
    live = sorted(session_service.live_for_user(_user().id), key=lambda record: record.sid != current_sid)
    return render_template("account/sessions.html", sessions=live, current_sid=current_sid, form=ConfirmForm())


@bp.post("/sessions/end-others")
@signed_in
@current.needs_recent_sign_in("account.signed_in_sessions")
def end_other_sessions():
    """Sign out every other browser and device (after a recent sign-in)."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    session_service.end_others(_user(), _sid(), ip=current.client_ip())
    flash(_("You were signed out everywhere else."), "success")
    return redirect(url_for("account.signed_in_sessions"), code=303)


@bp.get("/services")
@signed_in
def services():
    return render_template("account/services.html", services=grants.connected_services(_user().id),
                           form=RevokeForm())


@bp.post("/services/revoke")
@signed_in
def revoke_service():
    form = RevokeForm()
    if not form.validate_on_submit():
        abort(400)
    user = _user()
    known = {s.client_id: s for s in grants.connected_services(user.id)}
    service = known.get(form.client_id.data)
    if service is None:
        abort(404)
    count = grants.revoke_for_user_client(user.id, service.client_id)
    audit.record("grant.revoked", user_id=user.id, client_id=service.client_id,
                 ip_address=current.client_ip(), tokens=count)
    flash(_("%(name)s can no longer use your account.", name=service.name), "success")
    return redirect(url_for("account.services"), code=303)


@bp.route("/notifications", methods=["GET", "POST"])
@signed_in
def notifications():
    """Which city messages the resident gets, and how (shared with departments as a claim)."""
    user = _user()
    form = notification_form(notification_service.TOPICS, notification_service.CHANNELS)(
        data=notification_service.preferences(user) if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            notification_service.save(user, {t: form[t].data for t in notification_service.TOPICS},
                                      ip=current.client_ip())
        except DomainError as exc:
            form.form_errors.append(exc.message)
        else:
            flash(_("Your message choices were saved. Every city service using eCitizen Passport will follow them."),
                  "success")
            return redirect(url_for("account.profile"), code=303)
    status = 400 if request.method == "POST" else 200
    return render_template("account/notifications.html", form=form, topics=notification_service.TOPICS,
                           has_phone=user.phone_number_verified), status


@bp.route("/close", methods=["GET", "POST"])
@signed_in
def close_account():
    """The resident closes (or erases) their own account after confirming their password."""
    form = CloseAccountForm()
    if form.validate_on_submit():
        try:
            closure.close(_user(), form.current_password.data, erase=form.what.data == "erase",
                          ip=current.client_ip())
        except Throttled as exc:
            form.current_password.errors = [*form.current_password.errors, exc.message]
        except DomainError as exc:
            _attach(form, exc, {"bad_password": form.current_password})
        else:
            current.sign_out()
            return render_template("account/closed.html", erased=form.what.data == "erase",
                                   days=closure.reactivation_days())
    status = 400 if request.method == "POST" else 200
    return render_template("account/close.html", form=form, days=closure.reactivation_days()), status


@bp.get("/dashboard")
@signed_in
def dashboard():
    """One page for the whole city: what each department the resident uses has open for them."""
    return render_template("account/dashboard.html", cards=dashboard_service.cards(_user()))


@bp.get("/export")
@signed_in
def export():
    """Everything eCitizen Passport holds about the resident, as a JSON download (POPIA access right)."""
    user = _user()
    audit.record("account.exported", user_id=user.id, ip_address=current.client_ip(), via="self")
    return Response(json.dumps(privacy.export(user), indent=1, ensure_ascii=False), mimetype="application/json",
                    headers={"Content-Disposition": 'attachment; filename="my-ecitizen-passport-data.json"'})
