"""City Permits: building, event and business permit applications with validated forms and a
status timeline. Submitting needs multi-factor authentication: the app asks the IdP for a step-up
(``acr_values``) and checks the ID token's ``acr`` before it accepts an application."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from flask import Blueprint, Flask, abort, g, redirect, render_template, request, url_for
from flask.cli import AppGroup
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select
from wtforms import DateField, DecimalField, Form, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Regexp, ValidationError

from relying_party_examples.common import Passport, Settings
from relying_party_examples.common.i18n import labelled
from relying_party_examples.common.passport import ACR, ACR_RANK
from relying_party_examples.common.records import (
    StatusEventColumns,
    add_status,
    add_status_command,
    history,
    save_with_reference,
)

db = SQLAlchemy()
passport = Passport(db)

# permit type → its name: in English for the API, translated on the pages.
PERMIT_NAMES = {"building": "Building", "event": "Event", "business": "Business"}
PERMIT_TYPES = {"building": _l("Building"), "event": _l("Event"), "business": _l("Business")}
BUSINESS_KINDS = {"retail": _l("Retail"), "food": _l("Food"), "services": _l("Services"),
                  "informal trading": _l("Informal trading")}
OPEN = ("submitted", "under review")
DECISIONS = {"under-review": "under review", "approved": "approved", "rejected": "rejected"}
MAX_COST = Decimal(1_000_000_000)

# The database keeps statuses and the app's own history notes in English; residents read these.
STATUSES = {"submitted": _l("Submitted"), "under review": _l("Under review"), "approved": _l("Approved"),
            "rejected": _l("Rejected"), "withdrawn": _l("Withdrawn")}
RECEIVED, WITHDRAWN = "Application received.", "Withdrawn by the applicant."
NOTES = {"Application received.": _l("Application received."),
         "Withdrawn by the applicant.": _l("Withdrawn by the applicant.")}
NO_LONGER_WITHDRAWN = {
    "approved": _l("This application is approved and can no longer be withdrawn."),
    "rejected": _l("This application is rejected and can no longer be withdrawn."),
    "withdrawn": _l("This application is withdrawn and can no longer be withdrawn."),
}


class Application(db.Model):
    __tablename__ = "applications"
    id = db.Column(db.Integer, primary_key=True)
    reference = db.Column(db.String(20), nullable=False, unique=True)
    sub = db.Column(db.String(255), nullable=False, index=True)
    permit_type = db.Column(db.String(20), nullable=False)
    title = db.Column(db.String(120), nullable=False)
    site_address = db.Column(db.String(200), nullable=False)
    description = db.Column(db.Text, nullable=False)
    details = db.Column(db.JSON, nullable=False)  # the fields of the permit type
    status = db.Column(db.String(20), nullable=False)
    acr = db.Column(db.String(64), nullable=False)  # how strongly the resident had signed in
    submitted_at = db.Column(db.DateTime(timezone=True), nullable=False)
    events = db.relationship("StatusEvent", order_by="StatusEvent.id", back_populates="application")


class StatusEvent(StatusEventColumns, db.Model):
    __tablename__ = "status_events"
    application_id = db.Column(db.ForeignKey("applications.id"), nullable=False, index=True)
    application = db.relationship(Application, back_populates="events")


def _choices(labels: dict) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in labels.items()]


def _rands(form, field):
    """A positive amount of at most R1 000 000 000, in rands and cents (never a float)."""
    if field.data is None:
        return  # InputRequired or the field's own parsing has already said what is wrong
    if not field.data.is_finite() or not 0 < field.data <= MAX_COST:
        raise ValidationError(_("The cost must be more than R0 and at most R1 000 000 000."))
    if field.data.as_tuple().exponent < -2:
        raise ValidationError(_("Enter the cost in rands with at most 2 decimals, for example 250000.00."))


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _a_week_ahead(form, field):
    if field.data is not None and field.data < date.today() + timedelta(days=7):
        raise ValidationError(_("The event must be at least 7 days from today: the city needs a week to check it."))


def _json_value(value):
    """Dates in ISO form, the cost as an exact string of rands and cents."""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return value.isoformat() if isinstance(value, date) else value


class ApplicationForm(Form):
    permit_type = SelectField(_l("Type of permit"), choices=_choices({"": _l("Choose a type"), **PERMIT_TYPES}),
                              validators=[InputRequired(_l("Choose the type of permit."))],
                              # WTForms' own messages, in the page's language
                              invalid_choice_message=_l("Not a valid choice."))
    title = StringField(_l("Title"), filters=[_strip], validators=[
        InputRequired(_l("Give the application a short title.")),
        Length(3, 120, _l("The title must be 3 to 120 characters."))])
    site_address = StringField(_l("Site address"), filters=[_strip], validators=[
        InputRequired(_l("Enter the address where the work, event or business will be.")),
        Length(5, 200, _l("The address must be 5 to 200 characters."))])
    description = TextAreaField(_l("Description"), filters=[_strip], validators=[
        InputRequired(_l("Describe what you plan to do.")),
        Length(10, 2000, _l("The description must be 10 to 2000 characters."))])
    # building
    erf_number = StringField(_l("Erf number"), filters=[_strip], validators=[
        InputRequired(_l("Enter the erf number from your rates bill.")),
        Regexp(r"^\d{1,10}$", message=_l("The erf number is 1 to 10 digits."))])
    estimated_cost = DecimalField(_l("Estimated cost (rands)"), places=None, validators=[
        InputRequired(_l("Enter the estimated cost in rands.")), _rands],
        invalid_value_message=_l("Not a valid decimal value."))
    # event
    event_date = DateField(_l("Event date"), validators=[InputRequired(_l("Enter the date of the event.")),
                                                          _a_week_ahead],
                           invalid_value_message=_l("Not a valid date value."))
    attendance = IntegerField(_l("Expected attendance"), validators=[
        InputRequired(_l("Enter how many people you expect.")),
        NumberRange(1, 100_000, _l("Attendance must be 1 to 100 000."))],
        invalid_value_message=_l("Not a valid integer value."))
    # business
    trading_name = StringField(_l("Trading name"), filters=[_strip], validators=[
        InputRequired(_l("Enter the business's trading name.")),
        Length(2, 120, _l("The trading name must be 2 to 120 characters."))])
    business_type = SelectField(_l("Kind of business"), choices=_choices({"": _l("Choose a kind"), **BUSINESS_KINDS}),
                                validators=[InputRequired(_l("Choose the kind of business."))],
                                invalid_choice_message=_l("Not a valid choice."))

    FIELDS_BY_TYPE = {"building": ("erf_number", "estimated_cost"), "event": ("event_date", "attendance"),
                      "business": ("trading_name", "business_type")}

    def __init__(self, formdata=None):
        super().__init__(formdata)
        for field in self.per_type_fields():
            field.render_kw = {"required": False}  # required for one type only: the page says which

    def per_type_fields(self):
        return (self[name] for names in self.FIELDS_BY_TYPE.values() for name in names)

    def type_fields(self) -> tuple[str, ...]:
        return self.FIELDS_BY_TYPE.get(self.permit_type.data, ())

    def validate(self, extra_validators=None) -> bool:
        """Check the common fields and those of the chosen type; other types' fields are ignored,
        whatever they hold."""
        super().validate(extra_validators)
        for field in self.per_type_fields():
            if field.name not in self.type_fields():
                field.errors = []
        return not self.errors

    def details(self) -> dict:
        """The chosen type's fields, stored as JSON."""
        return {name: _json_value(self[name].data) for name in self.type_fields()}

    @classmethod
    def labels(cls) -> dict:
        return {field.name: field.label.text for field in cls()}


pages = Blueprint("permits", __name__, template_folder="templates")
api = Blueprint("permits_api", __name__, url_prefix="/api")


def create_app(overrides: dict | None = None) -> Flask:
    settings = Settings.load("permits", 5102, overrides)
    app = Flask(__name__)
    passport.init_app(app, settings, title=_l("City Permits"), slug="permits",
                      scope="openid profile email notification_preferences")
    app.jinja_env.filters.update(status_label=lambda status: labelled(STATUSES, status),
                                 note_label=lambda note: str(NOTES.get(note, note)))
    app.register_blueprint(pages)
    app.register_blueprint(api)
    app.cli.add_command(permits_cli)
    return app


def own_application(reference: str) -> Application:
    """The signed-in resident's application; 404 for anyone else's."""
    found = db.session.scalar(select(Application).where(Application.reference == reference,
                                                        Application.sub == g.resident["sub"]))
    if found is None:
        abort(404)
    return found


@pages.get("/")
def home():
    applications = []
    if g.resident:
        applications = db.session.scalars(select(Application).where(Application.sub == g.resident["sub"])
                                          .order_by(Application.submitted_at.desc())).all()
    return render_template("permits/home.html", applications=applications, types=PERMIT_TYPES)


@pages.route("/apply", methods=["GET", "POST"])
@passport.login_required(acr="mfa")
def apply():
    form = ApplicationForm(request.form)
    if request.method == "GET":
        return render_template("permits/apply.html", form=form)
    # acr_values is a request, not a guarantee: check what the ID token says happened before
    # accepting anything (the decorator did too; the guide shows the check where it matters).
    if ACR_RANK.get(g.resident.get("acr"), 0) < ACR_RANK[ACR["mfa"]]:
        abort(403)
    if not form.validate():
        return render_template("permits/apply.html", form=form), 400

    def build(reference: str) -> Application:
        application = Application(reference=reference, sub=g.resident["sub"], permit_type=form.permit_type.data,
                                  title=form.title.data, site_address=form.site_address.data,
                                  description=form.description.data, details=form.details(),
                                  acr=g.resident["acr"], submitted_at=datetime.now(timezone.utc))
        add_status(application, StatusEvent, "submitted", RECEIVED)
        return application

    application = save_with_reference(db, "PRM", build)
    return redirect(url_for(".detail", reference=application.reference), 303)


@pages.get("/applications/<reference>")
@passport.login_required()
def detail(reference):
    return show(own_application(reference))


def detail_value(name: str, value) -> str:
    """A stored detail as residents read it (the kind of business by its name, not its code)."""
    return str(BUSINESS_KINDS.get(value, value)) if name == "business_type" else value


def show(application: Application, error: str = "", status: int = 200):
    """The detail page: the application, its timeline and, while it is open, the withdraw button."""
    return render_template("permits/detail.html", application=application, types=PERMIT_TYPES,
                           labels=ApplicationForm.labels(), can_withdraw=application.status in OPEN,
                           detail_value=detail_value, error=error,
                           language_next=url_for(".detail", reference=application.reference)), status


@pages.post("/applications/<reference>/withdraw")
@passport.login_required()
def withdraw(reference):
    application = own_application(reference)
    if application.status not in OPEN:
        message = NO_LONGER_WITHDRAWN.get(application.status) or _("This application can no longer be withdrawn.")
        return show(application, str(message), 409)
    add_status(application, StatusEvent, "withdrawn", WITHDRAWN)
    db.session.commit()
    return redirect(url_for(".detail", reference=reference), 303)


# --- staff ---------------------------------------------------------------------------------------
permits_cli = AppGroup("permits", help="City staff: move applications along.")


add_status_command(permits_cli, db, "review", "decision", model=Application, event_model=StatusEvent,
                   choices=DECISIONS, still_open=lambda a: a.status in OPEN, noun="application")


# --- API -----------------------------------------------------------------------------------------
def describe(application: Application) -> dict:
    return {"reference": application.reference, "type": application.permit_type, "title": application.title,
            "status": application.status, "submitted_at": application.submitted_at.isoformat(),
            "events": history(application)}


@api.get("/residents/<sub>/summary")
@passport.require_token
def summary(sub):
    """The resident's open applications."""
    rows = db.session.scalars(select(Application).where(Application.sub == sub, Application.status.in_(OPEN))
                              .order_by(Application.submitted_at)).all()
    items = [{"title": f"{PERMIT_NAMES[a.permit_type]} permit: {a.title}", "status": a.status, "reference": a.reference,
              "url": passport.settings.base_url + url_for("permits.detail", reference=a.reference)} for a in rows]
    return {"department": "permits", "items": items, "count_open": len(items)}


@api.get("/applications/<reference>")
@passport.require_token
def application_api(reference):
    found = db.session.scalar(select(Application).where(Application.reference == reference))
    if found is None:
        return {"error": "not_found"}, 404
    return describe(found)
