"""City Permits: building, event and business permit applications with validated forms and a
status timeline. Submitting needs multi-factor authentication: the app asks the IdP for a step-up
(``acr_values``) and checks the ID token's ``acr`` before it accepts an application."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from flask import Blueprint, Flask, abort, g, redirect, render_template, request, url_for
from flask.cli import AppGroup
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select
from wtforms import DateField, DecimalField, Form, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Regexp, ValidationError

from relying_party_examples.common import Passport, Settings
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

PERMIT_TYPES = {"building": "Building", "event": "Event", "business": "Business"}
OPEN = ("submitted", "under review")
DECISIONS = {"under-review": "under review", "approved": "approved", "rejected": "rejected"}
MAX_COST = Decimal(1_000_000_000)


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
        raise ValidationError("The cost must be more than R0 and at most R1 000 000 000.")
    if field.data.as_tuple().exponent < -2:
        raise ValidationError("Enter the cost in rands with at most 2 decimals, for example 250000.00.")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _a_week_ahead(form, field):
    if field.data is not None and field.data < date.today() + timedelta(days=7):
        raise ValidationError("The event must be at least 7 days from today: the city needs a week to check it.")


def _json_value(value):
    """Dates in ISO form, the cost as an exact string of rands and cents."""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return value.isoformat() if isinstance(value, date) else value


class ApplicationForm(Form):
    permit_type = SelectField("Type of permit", choices=_choices({"": "Choose a type", **PERMIT_TYPES}),
                              validators=[InputRequired("Choose the type of permit.")])
    title = StringField("Title", filters=[_strip], validators=[
        InputRequired("Give the application a short title."), Length(3, 120, "The title must be 3 to 120 characters.")])
    site_address = StringField("Site address", filters=[_strip], validators=[
        InputRequired("Enter the address where the work, event or business will be."),
        Length(5, 200, "The address must be 5 to 200 characters.")])
    description = TextAreaField("Description", filters=[_strip], validators=[
        InputRequired("Describe what you plan to do."),
        Length(10, 2000, "The description must be 10 to 2000 characters.")])
    # building
    erf_number = StringField("Erf number", filters=[_strip], validators=[
        InputRequired("Enter the erf number from your rates bill."),
        Regexp(r"^\d{1,10}$", message="The erf number is 1 to 10 digits.")])
    estimated_cost = DecimalField("Estimated cost (rands)", places=None, validators=[
        InputRequired("Enter the estimated cost in rands."), _rands])
    # event
    event_date = DateField("Event date", validators=[InputRequired("Enter the date of the event."), _a_week_ahead])
    attendance = IntegerField("Expected attendance", validators=[
        InputRequired("Enter how many people you expect."),
        NumberRange(1, 100_000, "Attendance must be 1 to 100 000.")])
    # business
    trading_name = StringField("Trading name", filters=[_strip], validators=[
        InputRequired("Enter the business's trading name."),
        Length(2, 120, "The trading name must be 2 to 120 characters.")])
    business_type = SelectField("Kind of business", choices=_choices({
        "": "Choose a kind", "retail": "Retail", "food": "Food", "services": "Services",
        "informal trading": "Informal trading"}), validators=[InputRequired("Choose the kind of business.")])

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
    passport.init_app(app, settings, title="City Permits", slug="permits",
                      scope="openid profile email notification_preferences")
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
        add_status(application, StatusEvent, "submitted", "Application received.")
        return application

    application = save_with_reference(db, "PRM", build)
    return redirect(url_for(".detail", reference=application.reference), 303)


@pages.get("/applications/<reference>")
@passport.login_required()
def detail(reference):
    return show(own_application(reference))


def show(application: Application, error: str = "", status: int = 200):
    """The detail page: the application, its timeline and, while it is open, the withdraw button."""
    return render_template("permits/detail.html", application=application, types=PERMIT_TYPES,
                           labels=ApplicationForm.labels(), can_withdraw=application.status in OPEN,
                           error=error), status


@pages.post("/applications/<reference>/withdraw")
@passport.login_required()
def withdraw(reference):
    application = own_application(reference)
    if application.status not in OPEN:
        return show(application, f"This application is {application.status} and can no longer be withdrawn.", 409)
    add_status(application, StatusEvent, "withdrawn", "Withdrawn by the applicant.")
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
    items = [{"title": f"{PERMIT_TYPES[a.permit_type]} permit: {a.title}", "status": a.status, "reference": a.reference,
              "url": passport.settings.base_url + url_for("permits.detail", reference=a.reference)} for a in rows]
    return {"department": "permits", "items": items, "count_open": len(items)}


@api.get("/applications/<reference>")
@passport.require_token
def application_api(reference):
    found = db.session.scalar(select(Application).where(Application.reference == reference))
    if found is None:
        return {"error": "not_found"}, 404
    return describe(found)
