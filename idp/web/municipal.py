"""The resident's municipal accounts: link one with proof from the bill, ask for a link with a
document, see who else is linked, and unlink."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp.services import DomainError, Throttled, municipal
from idp.web import current
from idp.web.account import signed_in
from idp.web.forms import ROLE_LABELS, ConfirmForm, LinkAccountForm, LinkRequestForm

bp = Blueprint("municipal", __name__, url_prefix="/account/municipal")


recent_sign_in = current.needs_recent_sign_in()
recent_sign_in_for_list = current.needs_recent_sign_in("municipal.accounts")  # POST-only views come back to the list


def _user():
    return current.current_session()[1]


@bp.get("/")
@signed_in
def accounts():
    user = _user()
    rows = municipal.linked_accounts(user)
    others = {row.account_id: municipal.others_on(user, row.account_id) for row in rows if row.role == "owner"}
    return render_template("municipal/accounts.html", rows=rows, others=others, form=ConfirmForm(),
                           requests=municipal.requests_of(user), roles=ROLE_LABELS)


@bp.route("/link", methods=["GET", "POST"])
@signed_in
@recent_sign_in
def link():
    form = LinkAccountForm()
    status = 200
    if form.validate_on_submit():
        try:
            municipal.link_with_proof(_user(), form.account_number.data, form.proof_kind.data, form.proof.data,
                                      form.role.data, ip=current.client_ip())
        except DomainError as exc:
            field = {"invalid_account_number": form.account_number, "invalid_id_number": form.proof}.get(
                exc.code, form.account_number)
            field.errors = [*field.errors, exc.message]
            status = 429 if isinstance(exc, Throttled) else 400
        else:
            flash(_("Account %(n)s is now linked.", n=municipal.clean_number(form.account_number.data)), "success")
            return redirect(url_for("municipal.accounts"), code=303)
    elif request.method == "POST":
        status = 400
    form.proof.data = ""
    return render_template("municipal/link.html", form=form), status


@bp.route("/request", methods=["GET", "POST"])
@signed_in
@recent_sign_in
def request_link():
    form = LinkRequestForm()
    status = 200
    if form.validate_on_submit():
        upload = form.document.data
        try:
            municipal.request_link(_user(), form.account_number.data, form.role.data,
                                   upload.read() if upload else b"", upload.filename if upload else "",
                                   form.note.data or "", ip=current.client_ip())
        except DomainError as exc:
            field = {"invalid_account_number": form.account_number}.get(exc.code, form.document)
            field.errors = [*field.errors, exc.message]
            status = 429 if isinstance(exc, Throttled) else 400
        else:
            flash(_("Your request was sent. The city will review it and email you."), "success")
            return redirect(url_for("municipal.accounts"), code=303)
    elif request.method == "POST":
        status = 400
    return render_template("municipal/request.html", form=form), status


@bp.post("/<int:link_id>/unlink")
@signed_in
@recent_sign_in_for_list
def unlink(link_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if not municipal.unlink(_user(), link_id, ip=current.client_ip()):
        abort(404)
    flash(_("The account was unlinked."), "success")
    return redirect(url_for("municipal.accounts"), code=303)


@bp.post("/<int:link_id>/remove")
@signed_in
@recent_sign_in_for_list
def remove_other(link_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if not municipal.remove_other(_user(), link_id, ip=current.client_ip()):
        abort(404)
    flash(_("That person can no longer act on your account."), "success")
    return redirect(url_for("municipal.accounts"), code=303)
