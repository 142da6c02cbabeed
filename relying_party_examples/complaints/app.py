"""Report a Problem: complaints and service requests with an optional photo, reference numbers and
a status history. A billing query asks the billing department's API, with a ``client_credentials``
token for that API, whether the account is in arrears, and is routed accordingly."""
from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import quote

import requests
from flask import Blueprint, Flask, abort, current_app, g, redirect, render_template, request, url_for
from flask.cli import AppGroup
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select
from wtforms import FileField, Form, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, ValidationError

from relying_party_examples.common import Passport, Settings
from relying_party_examples.common.i18n import labelled
from relying_party_examples.common.records import (
    StatusEventColumns,
    add_status,
    add_status_command,
    history,
    save_with_reference,
)

db = SQLAlchemy()
passport = Passport(db)

# category → (label, the city team that handles it), in English: the database and the API keep these.
CATEGORIES = {
    "pothole": ("Pothole", "Roads"),
    "water leak": ("Water leak", "Water and sanitation"),
    "burst pipe": ("Burst pipe", "Water and sanitation"),
    "streetlight out": ("Streetlight out", "Electricity"),
    "refuse not collected": ("Refuse not collected", "Waste"),
    "sewage overflow": ("Sewage overflow", "Water and sanitation"),
    "noise": ("Noise", "By-law enforcement"),
    "billing query": ("Billing query", "Revenue: accounts"),
    "other": ("Something else", "Customer care"),
}
COLLECTIONS = "Revenue: collections"
# … and as residents read them on the pages.
CATEGORY_LABELS = {
    "pothole": _l("Pothole"),
    "water leak": _l("Water leak"),
    "burst pipe": _l("Burst pipe"),
    "streetlight out": _l("Streetlight out"),
    "refuse not collected": _l("Refuse not collected"),
    "sewage overflow": _l("Sewage overflow"),
    "noise": _l("Noise"),
    "billing query": _l("Billing query"),
    "other": _l("Something else"),
}
TEAMS = {
    "Roads": _l("Roads"),
    "Water and sanitation": _l("Water and sanitation"),
    "Electricity": _l("Electricity"),
    "Waste": _l("Waste"),
    "By-law enforcement": _l("By-law enforcement"),
    "Revenue: accounts": _l("Revenue: accounts"),
    "Revenue: collections": _l("Revenue: collections"),
    "Customer care": _l("Customer care"),
}
STATUSES = {"received": _l("Received"), "in progress": _l("In progress"), "resolved": _l("Resolved"),
            "closed": _l("Closed")}
CLOSED = ("resolved", "closed")
UPDATES = {"in-progress": "in progress", "resolved": "resolved", "closed": "closed"}
MAX_PHOTO_BYTES = 2 * 1024 * 1024
PHOTO_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


class Complaint(db.Model):
    __tablename__ = "complaints"
    id = db.Column(db.Integer, primary_key=True)
    reference = db.Column(db.String(20), nullable=False, unique=True)
    sub = db.Column(db.String(255), nullable=False, index=True)
    category = db.Column(db.String(40), nullable=False)
    location = db.Column(db.String(200), nullable=False)
    description = db.Column(db.Text, nullable=False)
    account_number = db.Column(db.String(32))
    account_in_arrears = db.Column(db.Boolean)  # None: billing could not be asked
    team = db.Column(db.String(60), nullable=False)
    status = db.Column(db.String(20), nullable=False)
    created_at = db.Column(db.DateTime(timezone=True), nullable=False)
    events = db.relationship("StatusEvent", order_by="StatusEvent.id", back_populates="complaint")
    photo = db.relationship("Photo", uselist=False, back_populates="complaint")


class Photo(db.Model):
    __tablename__ = "photos"
    id = db.Column(db.Integer, primary_key=True)
    complaint_id = db.Column(db.ForeignKey("complaints.id"), nullable=False, unique=True)
    content_type = db.Column(db.String(20), nullable=False)
    data = db.Column(db.LargeBinary, nullable=False)
    complaint = db.relationship(Complaint, back_populates="photo")


class StatusEvent(StatusEventColumns, db.Model):
    __tablename__ = "status_events"
    complaint_id = db.Column(db.ForeignKey("complaints.id"), nullable=False, index=True)
    complaint = db.relationship(Complaint, back_populates="events")


def photo_type(data: bytes) -> str | None:
    """The photo's content type judged by its first bytes (JPEG or PNG), never by its name."""
    return next((kind for magic, kind in PHOTO_TYPES.items() if data.startswith(magic)), None)


def stripped(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def team_label(team: str) -> str:
    return str(TEAMS.get(team, team))


def note_label(note: str) -> str:
    """A history note as residents read it: the app's own "Sent to <team>." translated, a note
    from staff as they wrote it."""
    team = note.removeprefix("Sent to ").removesuffix(".")
    if note == f"Sent to {team}." and team in TEAMS:
        return _("Sent to %(team)s.", team=TEAMS[team])
    return note


class ReportForm(Form):
    category = SelectField(_l("Category"), choices=[SelectChoice("", _l("Choose a category"))] +
                           [SelectChoice(value, label) for value, label in CATEGORY_LABELS.items()],
                           validators=[InputRequired(_l("Choose what the problem is about."))],
                           invalid_choice_message=_l("Not a valid choice."))  # WTForms' own, translated
    location = StringField(_l("Location"), filters=[stripped], validators=[
        InputRequired(_l("Enter where the problem is: a street address or map coordinates.")),
        Length(5, 200, _l("The location must be 5 to 200 characters."))])
    description = TextAreaField(_l("Description"), filters=[stripped], validators=[
        InputRequired(_l("Describe the problem.")),
        Length(10, 2000, _l("The description must be 10 to 2000 characters."))])
    account_number = SelectField(_l("Municipal account"), validate_choice=False)
    photo = FileField(_l("Photo (optional)"))

    def __init__(self, formdata, files, accounts: list[str]):
        super().__init__(formdata)
        self.accounts = accounts
        self.account_number.choices = [SelectChoice("", _("None"))] + [SelectChoice(n, n) for n in accounts]
        self.upload = files.get("photo")
        self.photo_bytes, self.photo_type = None, None

    def validate_account_number(self, field):
        if field.data and field.data not in self.accounts:
            raise ValidationError(_("Choose one of your own linked accounts."))
        if self.category.data == "billing query" and not field.data:
            raise ValidationError(_("Choose the account your billing query is about."))

    def validate_photo(self, field):
        if self.upload is None or not self.upload.filename:
            return
        data = self.upload.stream.read(MAX_PHOTO_BYTES + 1)
        if len(data) > MAX_PHOTO_BYTES:
            raise ValidationError(_("The photo is larger than 2 MB. Choose a smaller one."))
        kind = photo_type(data)
        if kind is None:
            raise ValidationError(_("The photo must be a JPEG or PNG picture."))
        self.photo_bytes, self.photo_type = data, kind


pages = Blueprint("complaints", __name__, template_folder="templates")
api = Blueprint("complaints_api", __name__, url_prefix="/api")


def create_app(overrides: dict | None = None) -> Flask:
    settings = Settings.load("complaints", 5103, overrides)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_PHOTO_BYTES + 64 * 1024
    passport.init_app(app, settings, title=_l("Report a Problem"), slug="complaints",
                      scope="openid profile email municipal_accounts notification_preferences")
    app.jinja_env.filters.update(status_label=lambda status: labelled(STATUSES, status),
                                 team_label=team_label, note_label=note_label)
    app.register_blueprint(pages)
    app.register_blueprint(api)
    app.cli.add_command(complaints_cli)
    app.register_error_handler(413, lambda error: (render_template(
        "passport/message.html", message=_("The photo is larger than 2 MB. Go back and choose a smaller one."),
        language_next=url_for("complaints.report")), 413))
    return app


def billing_standing(number: str) -> bool | None:
    """Ask billing whether account ``number`` is in arrears; None when billing cannot answer now
    (not configured, down, slow, refusing or answering nonsense): a report never fails because of it.
    Only the status code or the exception's type is logged, never a token."""
    settings = passport.settings
    url, resource = settings.get("BILLING_API_URL"), settings.get("BILLING_API_RESOURCE")
    if not url or not resource:
        current_app.logger.warning("RP_BILLING_API_URL or RP_BILLING_API_RESOURCE not set: no arrears check")
        return None
    try:
        answer = passport.call_department(f"{url.rstrip('/')}/accounts/{quote(number, safe='')}/standing",
                                          resource, timeout=3)
        body = answer.json() if answer.status_code == 200 else {}
        in_arrears = body.get("in_arrears") if isinstance(body, dict) else None
        if isinstance(in_arrears, bool):
            return in_arrears
        current_app.logger.warning("billing answered %s without an arrears flag", answer.status_code)
    except (requests.RequestException, ValueError) as exc:
        current_app.logger.warning("billing could not be asked about arrears: %s", type(exc).__name__)
    return None


def own_complaint(reference: str) -> Complaint:
    """The signed-in resident's request; 404 for anyone else's."""
    found = db.session.scalar(select(Complaint).where(Complaint.reference == reference,
                                                      Complaint.sub == g.resident["sub"]))
    if found is None:
        abort(404)
    return found


def resident_accounts() -> list[str]:
    return [a["account_number"] for a in g.resident.get("municipal_accounts") or [] if a.get("account_number")]


@pages.get("/")
def home():
    requests_made = []
    if g.resident:
        requests_made = db.session.scalars(select(Complaint).where(Complaint.sub == g.resident["sub"])
                                           .order_by(Complaint.created_at.desc())).all()
    return render_template("complaints/home.html", complaints=requests_made, categories=CATEGORY_LABELS)


@pages.route("/report", methods=["GET", "POST"])
@passport.login_required()
def report():
    form = ReportForm(request.form, request.files, resident_accounts())
    if request.method == "GET" or not form.validate():
        return render_template("complaints/report.html", form=form), 200 if request.method == "GET" else 400
    team = CATEGORIES[form.category.data][1]
    in_arrears = None
    if form.category.data == "billing query":
        in_arrears = billing_standing(form.account_number.data)
        team = COLLECTIONS if in_arrears else team

    def build(reference: str) -> Complaint:
        complaint = Complaint(reference=reference, sub=g.resident["sub"], category=form.category.data,
                              location=form.location.data, description=form.description.data,
                              account_number=form.account_number.data or None, account_in_arrears=in_arrears,
                              team=team, created_at=datetime.now(timezone.utc))
        add_status(complaint, StatusEvent, "received", f"Sent to {team}.")
        if form.photo_bytes:
            complaint.photo = Photo(content_type=form.photo_type, data=form.photo_bytes)
        return complaint

    complaint = save_with_reference(db, "CMP", build)
    return redirect(url_for(".detail", reference=complaint.reference), 303)


@pages.get("/requests/<reference>")
@passport.login_required()
def detail(reference):
    return render_template("complaints/detail.html", complaint=own_complaint(reference), categories=CATEGORY_LABELS)


@pages.get("/requests/<reference>/photo")
@passport.login_required()
def photo(reference):
    found = own_complaint(reference).photo
    if found is None:
        abort(404)
    return found.data, 200, {"Content-Type": found.content_type, "X-Content-Type-Options": "nosniff",
                             "Cache-Control": "private, max-age=3600", "Content-Disposition": "inline"}


# --- staff ---------------------------------------------------------------------------------------
complaints_cli = AppGroup("complaints", help="City staff: update service requests.")


add_status_command(complaints_cli, db, "update", "status", model=Complaint, event_model=StatusEvent,
                   choices=UPDATES, still_open=lambda c: c.status != "closed", noun="request")


# --- API -----------------------------------------------------------------------------------------
@api.get("/residents/<sub>/summary")
@passport.require_token
def summary(sub):
    """The resident's open requests."""
    rows = db.session.scalars(select(Complaint).where(Complaint.sub == sub, Complaint.status.not_in(CLOSED))
                              .order_by(Complaint.created_at)).all()
    items = [{"title": f"{CATEGORIES[c.category][0]} at {c.location}", "status": c.status, "reference": c.reference,
              "url": passport.settings.base_url + url_for("complaints.detail", reference=c.reference)} for c in rows]
    return {"department": "complaints", "items": items, "count_open": len(items)}


@api.get("/requests/<reference>")
@passport.require_token
def request_api(reference):
    found = db.session.scalar(select(Complaint).where(Complaint.reference == reference))
    if found is None:
        return {"error": "not_found"}, 404
    return {"reference": found.reference, "category": found.category, "status": found.status,
            "created_at": found.created_at.isoformat(),
            "events": history(found)}
