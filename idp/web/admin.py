"""The staff console at /admin: support (find, help and protect residents) and administration
(clients, roles, keys, audit). Entry needs a staff role and a multi-factor session, and lapses
after a short idle time; every action is audited with its actor and reason."""
from __future__ import annotations

import json
import time
from datetime import date, timedelta
from functools import wraps

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from wtforms.fields.choices import SelectChoice

from idp.extensions import db
from idp.models import Client, LinkRequest, User
from idp.models.types import utcnow
from idp.oidc import acr as acr_rules
from idp.oidc.claims import SCOPES
from idp.services import (
    DomainError,
    Throttled,
    approvals,
    audit,
    audit_log,
    backchannel,
    clients,
    directory,
    keys,
    mail_queue,
    municipal,
    privacy,
    support,
)
from idp.web import current
from idp.web.forms import ClientForm, ReasonForm, RolesForm, StaffEmailForm

bp = Blueprint("admin", __name__, url_prefix="/admin")

IDLE_SECONDS = 15 * 60
SUPPORT, ADMINISTRATOR = support.SUPPORT, support.ADMINISTRATOR


def _has(user: User, role: str) -> bool:
    roles = set(user.roles or [])
    return ADMINISTRATOR in roles or role in roles


def staff_acr() -> str:
    """The sign-in strength the console demands (IDP_STAFF_MFA): a passkey or security key, or any
    second factor."""
    if current_app.config["IDP_SETTINGS"].staff_mfa == "phishing-resistant":
        return acr_rules.ACR_PHISHING_RESISTANT
    return acr_rules.ACR_MFA


def staff(role: str = SUPPORT):
    """Staff only: anyone else gets 404 (and the attempt is audited); a session weaker than
    IDP_STAFF_MFA demands is stepped up; a console session older than IDP_STAFF_SESSION_HOURS, or
    idle for IDLE_SECONDS, signs the staff member out."""
    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            found = current.current_session()
            if found is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            record, user = found
            if not _has(user, role):
                audit.record("admin.access_denied", outcome="failure", user_id=user.id, ip_address=current.client_ip(),
                             method=request.method[:10], path=request.path[:200], role=role)
                abort(404)
            now = time.time()
            if utcnow() - record.created_at > timedelta(hours=current_app.config["IDP_SETTINGS"].staff_session_hours):
                session.pop("admin_seen", None)
                current.sign_out()
                flash(_("Your console session has ended. Sign in again."), "error")
                return redirect(url_for("auth.login", next=request.path))
            last = session.get("admin_seen")
            if last is not None and now - last > IDLE_SECONDS:
                session.pop("admin_seen", None)
                current.sign_out()
                flash(_("The console was idle for too long. Sign in again."), "error")
                return redirect(url_for("auth.login", next=request.path))
            wanted = staff_acr()
            if acr_rules.rank(record.acr) < acr_rules.rank(wanted):
                return redirect(url_for("mfa.step_up", acr=wanted, next=request.full_path.rstrip("?")))
            session["admin_seen"] = now
            return view(*args, **kwargs)
        return wrapper
    return decorate


def _me() -> User:
    return current.current_session()[1]


def _resident(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _ip() -> str:
    return current.client_ip()


# --- overview ------------------------------------------------------------------------------------

@bp.get("/")
@staff()
def overview():
    adopted, active = audit_log.mfa_adoption()
    charts = [(_("Registrations"), audit_log.daily_counts("user.registered", outcome="success")),
              (_("Sign-ins"), audit_log.daily_counts("signin.success")),
              (_("Failed sign-ins"), audit_log.daily_counts("signin.failure")),
              (_("Second factors added"), audit_log.daily_counts("mfa.factor_added"))]
    return render_template("admin/overview.html", charts=charts, adopted=adopted, active=active,
                           pending=len(municipal.pending_requests()), mail=mail_queue.state(),
                           approvals_waiting=len(approvals.waiting_for(_me())))


# --- residents -----------------------------------------------------------------------------------

@bp.get("/residents")
@staff()
def residents():
    query = request.args.get("q", "")[:200]
    return render_template("admin/residents.html", query=query, results=support.search(query) if query else None)


@bp.get("/residents/<int:user_id>")
@staff()
def resident(user_id: int):
    target = _resident(user_id)
    audit.record("admin.resident_viewed", user_id=target.id, actor_id=_me().id, ip_address=_ip())
    return render_template("admin/resident.html", view=support.view(target), form=ReasonForm(),
                           roles_form=RolesForm(roles=list(target.roles or [])),
                           is_admin=_has(_me(), ADMINISTRATOR), is_self=target.id == _me().id)


def _act(user_id: int, action, done: str):
    """Run a staff action that takes a reason; errors come back as a message on the resident's page."""
    target = _resident(user_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        flash(_("Give a reason (3 to 500 characters): it goes in the audit trail."), "error")
    else:
        try:
            action(_me(), target, form.reason.data, ip=_ip())
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            flash(done, "success")
    return redirect(url_for("admin.resident", user_id=user_id), code=303)


@bp.post("/residents/<int:user_id>/lock")
@staff()
def lock(user_id: int):
    return _act(user_id, support.lock, _("The account is locked and signed out everywhere."))


@bp.post("/residents/<int:user_id>/unlock")
@staff()
def unlock(user_id: int):
    return _act(user_id, support.unlock, _("The account is unlocked."))


@bp.post("/residents/<int:user_id>/sign-out")
@staff()
def sign_out_everywhere(user_id: int):
    return _act(user_id, support.sign_out_everywhere, _("The resident is signed out everywhere."))


@bp.post("/residents/<int:user_id>/reset-mfa")
@staff()
def reset_mfa(user_id: int):
    if approvals.needs_approval_for_mfa_reset(_resident(user_id)):
        return _act(user_id, approvals.ask_mfa_reset,
                    _("This is a staff account: the reset waits for a second administrator under Approvals."))
    return _act(user_id, support.reset_mfa, _("Second factors removed; the resident was emailed."))


@bp.post("/residents/<int:user_id>/deactivate")
@staff()
def deactivate(user_id: int):
    return _act(user_id, privacy.deactivate, _("The account is deactivated."))


@bp.post("/residents/<int:user_id>/reactivate")
@staff()
def reactivate(user_id: int):
    return _act(user_id, privacy.reactivate, _("The account is active again."))


@bp.post("/residents/<int:user_id>/erase")
@staff(ADMINISTRATOR)
def erase(user_id: int):
    return _act(user_id, privacy.erase, _("The resident's personal data was erased."))


@bp.post("/residents/<int:user_id>/resend-verification")
@staff()
def resend_verification(user_id: int):
    target = _resident(user_id)  # (CSRFProtect checks every POST's token)
    try:
        support.resend_verification(_me(), target, ip=_ip())
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(_("A new confirmation link was sent."), "success")
    return redirect(url_for("admin.resident", user_id=user_id), code=303)


@bp.post("/residents/<int:user_id>/email")
@staff()
def change_email(user_id: int):
    target = _resident(user_id)
    form = StaffEmailForm()
    if not form.validate_on_submit():
        flash(" ".join(str(e) for errors in form.errors.values() for e in errors), "error")
    else:
        try:
            support.change_email(_me(), target, form.new_email.data, form.reason.data, ip=_ip())
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            flash(_("The address was changed; a confirmation link went to the new one."), "success")
    return redirect(url_for("admin.resident", user_id=user_id), code=303)


@bp.post("/residents/<int:user_id>/roles")
@staff(ADMINISTRATOR)
def set_roles(user_id: int):
    target = _resident(user_id)
    form = RolesForm()
    if not form.validate_on_submit():
        flash(_("Give a reason (3 to 500 characters): it goes in the audit trail."), "error")
    else:
        try:
            support.set_roles(_me(), target, form.roles.data or [], form.reason.data, ip=_ip())
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            flash(_("Staff roles saved."), "success")
    return redirect(url_for("admin.resident", user_id=user_id), code=303)


@bp.get("/residents/<int:user_id>/export")
@staff()
def export(user_id: int):
    target = _resident(user_id)
    audit.record("account.exported", user_id=target.id, actor_id=_me().id, ip_address=_ip())
    return _json_download(privacy.export(target), f"resident-{target.id}.json")


def _json_download(data: dict, filename: str) -> Response:
    return Response(json.dumps(data, indent=1, ensure_ascii=False), mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/deliveries")
@staff()
def deliveries():
    """Mail and back-channel logout notices that could not be delivered yet (never contents)."""
    return render_template("admin/deliveries.html", state=mail_queue.state(), rows=mail_queue.problems(),
                           logouts=backchannel.problems(), logouts_waiting=backchannel.waiting())


# --- account-link requests -----------------------------------------------------------------------

@bp.get("/link-requests")
@staff()
def link_requests():
    pending = municipal.pending_requests()
    people = {u.id: u for u in db.session.scalars(db.select(User).where(User.id.in_([r.user_id for r in pending])))}
    return render_template("admin/link_requests.html", pending=pending, people=people, form=ReasonForm())


@bp.get("/link-requests/<int:request_id>/document")
@staff()
def link_request_document(request_id: int):
    found = db.session.get(LinkRequest, request_id)
    if found is None:
        abort(404)
    audit.record("account_link.document_viewed", user_id=found.user_id, actor_id=_me().id, request=found.id)
    extension = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}[found.document_type]
    return Response(found.document, mimetype=found.document_type, headers={
        "Content-Disposition": f'attachment; filename="link-request-{found.id}.{extension}"',
        "Content-Security-Policy": "default-src 'none'; sandbox"})


@bp.post("/link-requests/<int:request_id>/<any(approve, reject):decision>")
@staff()
def decide_link_request(request_id: int, decision: str):
    form = ReasonForm()
    me = _me()
    found = db.session.get(LinkRequest, request_id)
    if found is None:
        abort(404)
    if found.user_id == me.id:
        flash(_("Staff cannot act on their own account from the console."), "error")
    elif decision == "reject" and not form.validate_on_submit():
        flash(_("Give the resident a reason (3 to 500 characters)."), "error")
    else:
        try:
            if decision == "approve":
                municipal.approve(request_id, me.email, actor_id=me.id)
            else:
                municipal.reject(request_id, me.email, form.reason.data, actor_id=me.id)
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            flash(_("Request %(n)d: %(d)s.", n=request_id,
                    d=_("approved") if decision == "approve" else _("rejected")), "success")
    return redirect(url_for("admin.link_requests"), code=303)


# --- clients (administrators) --------------------------------------------------------------------

def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _client_form(client: Client | None = None) -> ClientForm:
    form = ClientForm()
    form.scopes.choices = [(s, s) for s in SCOPES]
    form.category.choices = [SelectChoice("", _("Choose a category"))] + [
        SelectChoice(slug, str(label)) for slug, label in directory.CATEGORIES.items()]
    if client is not None and request.method == "GET":
        form.listed.data, form.category.data = client.listed, client.category or ""
        form.service_url.data, form.keywords.data = client.service_url or "", client.keywords
        form.name.data = client.name
        form.redirect_uris.data = "\n".join(client.redirect_uris or [])
        form.post_logout_redirect_uris.data = "\n".join(client.post_logout_redirect_uris or [])
        form.backchannel_logout_uri.data = client.backchannel_logout_uri or ""
        form.scopes.data = client.scope.split()
        form.first_party.data = client.first_party
        form.purpose.data = client.purpose
    elif request.method == "GET":
        form.scopes.data = ["openid", "profile", "email"]
    return form


@bp.get("/clients")
@staff(ADMINISTRATOR)
def client_list():
    return render_template("admin/clients.html", clients=clients.list_clients(), form=ReasonForm())


recent_sign_in = current.needs_recent_sign_in()


@bp.route("/clients/new", methods=["GET", "POST"])
@staff(ADMINISTRATOR)
@recent_sign_in
def client_new():
    form = _client_form()
    status = 200
    if form.validate_on_submit():
        try:
            clients.check_branding(form.purpose.data or "", _logo(form))  # before anything is written
            directory.check_listing(**_listing(form))
            client, secret = clients.create_client(
                form.name.data, _lines(form.redirect_uris.data),
                post_logout_redirect_uris=_lines(form.post_logout_redirect_uris.data),
                backchannel_logout_uri=(form.backchannel_logout_uri.data or "").strip() or None, public=form.public.data,
                scope=" ".join(form.scopes.data or ["openid"]), first_party=form.first_party.data)
            clients.set_branding(client, purpose=form.purpose.data or "", logo=_logo(form))
            directory.set_listing(client, **_listing(form))
        except DomainError as exc:
            form.redirect_uris.errors = [*form.redirect_uris.errors, exc.message]
            status = 400
        else:
            audit.record("client.created", client_id=client.client_id, actor_id=_me().id, ip_address=_ip(),
                         via="console")
            return render_template("admin/client_secret.html", client=client, secret=secret)
    elif request.method == "POST":
        status = 400
    return render_template("admin/client_form.html", form=form, client=None), status


def _listing(form: ClientForm) -> dict:
    return {"listed": form.listed.data, "category": form.category.data or None,
            "service_url": (form.service_url.data or "").strip() or None, "keywords": form.keywords.data or ""}


def _logo(form: ClientForm) -> bytes | None:
    upload = form.logo.data
    return upload.read() if upload and getattr(upload, "filename", "") else None


def _client(client_id: str) -> Client:
    found = db.session.scalar(db.select(Client).where(Client.client_id == client_id))
    if found is None:
        abort(404)
    return found


@bp.route("/clients/<client_id>", methods=["GET", "POST"])
@staff(ADMINISTRATOR)
@recent_sign_in  # redirect URIs decide where codes go: changing them needs a fresh sign-in
def client_edit(client_id: str):
    client = _client(client_id)
    form = _client_form(client)
    status = 200
    if form.validate_on_submit():
        try:
            directory.check_listing(**_listing(form))  # before anything is written
            changes = clients.update_client(
                client, name=form.name.data, redirect_uris=_lines(form.redirect_uris.data),
                post_logout_redirect_uris=_lines(form.post_logout_redirect_uris.data),
                backchannel_logout_uri=(form.backchannel_logout_uri.data or "").strip() or None,
                scope=" ".join(form.scopes.data or []), first_party=form.first_party.data)
            changes |= clients.set_branding(client, purpose=form.purpose.data or "", logo=_logo(form))
            changes |= directory.set_listing(client, **_listing(form))
        except DomainError as exc:
            form.redirect_uris.errors = [*form.redirect_uris.errors, exc.message]
            status = 400
        else:
            audit.record("client.updated", client_id=client.client_id, actor_id=_me().id, ip_address=_ip(),
                         changes=changes)
            flash(_("Saved."), "success")
            return redirect(url_for("admin.client_list"), code=303)
    elif request.method == "POST":
        status = 400
    return render_template("admin/client_form.html", form=form, client=client), status


@bp.post("/clients/<client_id>/<any(disable, enable):change>")
@staff(ADMINISTRATOR)
def client_toggle(client_id: str, change: str):
    client = _client(client_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        flash(_("Give a reason (3 to 500 characters): it goes in the audit trail."), "error")
    else:
        clients.set_disabled(client, change == "disable")
        audit.record(f"client.{change}d", client_id=client.client_id, actor_id=_me().id, ip_address=_ip(),
                     reason=form.reason.data)
        flash(_("%(name)s: %(state)s.", name=client.name,
                state=_("disabled") if change == "disable" else _("enabled")), "success")
    return redirect(url_for("admin.client_list"), code=303)


@bp.post("/clients/<client_id>/rotate-secret")
@staff(ADMINISTRATOR)
def client_rotate_secret(client_id: str):
    client = _client(client_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        flash(_("Give a reason (3 to 500 characters): it goes in the audit trail."), "error")
        return redirect(url_for("admin.client_list"), code=303)
    try:
        secret, until = clients.rotate_secret(client)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("admin.client_list"), code=303)
    audit.record("client.secret_rotated", client_id=client.client_id, actor_id=_me().id, ip_address=_ip(),
                 reason=form.reason.data, previous_valid_until=until.isoformat() if until else None)
    return render_template("admin/client_secret.html", client=client, secret=secret, previous_until=until)


# --- keys and audit (administrators) -------------------------------------------------------------

@bp.route("/keys", methods=["GET", "POST"])
@staff(ADMINISTRATOR)
def signing_keys():
    form = ReasonForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            flash(_("Give a reason (3 to 500 characters): it goes in the audit trail."), "error")
        else:
            record = keys.rotate()
            audit.record("key.rotated", actor_id=_me().id, ip_address=_ip(), kid=record.kid, reason=form.reason.data)
            flash(_("New signing key %(kid)s is published and signs from %(time)s.", kid=record.kid,
                    time=record.activates_at.strftime("%Y-%m-%d %H:%M")), "success")
        return redirect(url_for("admin.signing_keys"), code=303)
    return render_template("admin/keys.html", keys=keys.list_keys(), form=form, now=utcnow())


def _filters() -> audit_log.Filters:
    def number(name):
        value = request.args.get(name, "")
        return int(value) if value.isdigit() and len(value) < 12 else None

    def day(name):
        try:
            return date.fromisoformat(request.args.get(name, ""))
        except ValueError:
            return None

    return audit_log.Filters(event=request.args.get("event", "")[:64], user_id=number("user"),
                             actor_id=number("actor"), outcome=request.args.get("outcome", "")[:16],
                             since=day("since"), until=day("until"))


@bp.get("/audit")
@staff(ADMINISTRATOR)
def audit_events():
    filters = _filters()
    number = request.args.get("page", "1")
    page_number = int(number) if number.isdigit() and len(number) < 6 else 1
    rows, more = audit_log.page(filters, page_number)
    query = {k: v for k, v in request.args.items() if k != "page"}
    return render_template("admin/audit.html", rows=rows, more=more, page=page_number, filters=filters, query=query,
                           export_form=ReasonForm())


@bp.post("/audit/exports")
@staff(ADMINISTRATOR)
def audit_export_request():
    """Ask for the filtered events as CSV: the download waits for a second administrator."""
    form = ReasonForm()
    if not form.validate_on_submit():
        flash(_("Give a reason (3 to 500 characters): it goes in the audit trail."), "error")
        return redirect(url_for("admin.audit_events", **request.args), code=303)
    approvals.ask_audit_export(_me(), _filters().chosen(), form.reason.data, ip=_ip())
    flash(_("Your export waits for a second administrator's approval; it can then be downloaded once, here."),
          "success")
    return redirect(url_for("admin.approval_list"), code=303)


@bp.get("/approvals")
@staff()
def approval_list():
    me = _me()
    return render_template("admin/approvals.html", waiting=approvals.waiting_for(me), mine=approvals.asked_by(me),
                           form=ReasonForm(), now=utcnow())


@bp.post("/approvals/<int:request_id>/<any(approve, refuse):decision>")
@staff(ADMINISTRATOR)
def decide_approval(request_id: int, decision: str):
    try:
        if decision == "approve":
            approvals.approve(request_id, _me(), ip=_ip())
            flash(_("Approved."), "success")
        else:
            approvals.refuse(request_id, _me(), ip=_ip())
            flash(_("Refused; nothing was done."), "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return redirect(url_for("admin.approval_list"), code=303)


@bp.get("/approvals/<int:request_id>/audit-events.csv")
@staff(ADMINISTRATOR)
def audit_csv(request_id: int):
    """An approved export, downloaded once by the administrator who asked for it."""
    me = _me()
    if not audit_log.export_allowed(me.id):
        audit.record("audit.export_refused", outcome="failure", actor_id=me.id, ip_address=_ip(), request=request_id)
        raise Throttled("too_many_exports", _("Too many attempts. Try again in %(n)d minutes.", n=60), retry_after=3600)
    try:
        approved = approvals.take_export(request_id, me)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("admin.approval_list"), code=303)
    filters = audit_log.Filters.from_chosen(approved.detail.get("filters", {}))
    audit.record("audit.exported", actor_id=me.id, ip_address=_ip(), filters=filters.chosen(),
                 rows=audit_log.count(filters), request=approved.id, approved_by=approved.decided_by)
    app = current_app._get_current_object()  # noqa: SLF001  (the stream runs after the view returns)

    def generate():
        with app.app_context():
            yield from audit_log.csv_chunks(filters)

    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="audit-events.csv"'})
