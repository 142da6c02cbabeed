"""Programs and Events: upcoming city programs, workshops and community meetings; residents
register and cancel. Onboarded like any department (a client, a listing, a summary endpoint),
without a change to the IdP's code."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from flask import Blueprint, Flask, abort, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import func, select

from relying_party_examples.common import Passport, Settings
from relying_party_examples.common.i18n import labelled

db = SQLAlchemy()
passport = Passport(db)
SAST = timezone(timedelta(hours=2))
KINDS = ("workshop", "community meeting", "program")
KIND_LABELS = {"workshop": _l("Workshop"), "community meeting": _l("Community meeting"), "program": _l("Program")}

# (slug, title, kind, days from today, hour, venue, capacity, description): the demo's programs, stored as
# the city entered them (in English).
DEMO_PROGRAMS = (
    ("water-wise-gardening", "Water-wise gardening workshop", "workshop", 5, 10, "Kirstenbosch Centre, Newlands", 40,
     "Plant a garden that survives the dry months, with seedlings to take home."),
    ("ward-115-meeting", "Ward 115 community meeting", "community meeting", 9, 18, "Civic Centre, Hertzog Boulevard",
     200, "Your councillor reports back; bring questions about roads, refuse and safety."),
    ("youth-coding-club", "Youth coding club", "program", 12, 14, "Central Library, Darling Street", 2,
     "Six Saturday afternoons of programming for learners aged 12 to 18."),
    ("small-business-clinic", "Small business registration clinic", "workshop", 19, 9,
     "Bellville Business Hub, Voortrekker Road", 30, "Register a business, get a trading permit and meet city buyers."),
    ("holiday-reading", "Library holiday reading program", "program", 26, 11,
     "Khayelitsha Library, Walter Sisulu Road", 60, "Read five books over the holidays and earn a certificate."),
    ("emergency-preparedness", "Emergency preparedness talk", "community meeting", 40, 18,
     "Mitchells Plain Town Centre Hall", 120,
     "What to do in floods and fires, with the city's disaster management team."),
)


class Program(db.Model):
    __tablename__ = "programs"
    __table_args__ = (db.CheckConstraint(f"kind IN {KINDS}", name="program_kind"),)
    id = db.Column(db.Integer, primary_key=True)
    slug = db.Column(db.String(60), nullable=False, unique=True)
    title = db.Column(db.String(120), nullable=False)
    kind = db.Column(db.String(30), nullable=False)
    starts_at = db.Column(db.DateTime(timezone=True), nullable=False)
    venue = db.Column(db.String(200), nullable=False)
    description = db.Column(db.Text, nullable=False)
    capacity = db.Column(db.Integer, nullable=False)


class Registration(db.Model):
    """One row per resident and program; cancelling keeps the row (history) and re-registering revives it."""
    __tablename__ = "registrations"
    __table_args__ = (db.UniqueConstraint("program_id", "sub"),)
    id = db.Column(db.Integer, primary_key=True)
    program_id = db.Column(db.ForeignKey("programs.id"), nullable=False)
    sub = db.Column(db.String(255), nullable=False, index=True)
    created_at = db.Column(db.DateTime(timezone=True), nullable=False)
    cancelled_at = db.Column(db.DateTime(timezone=True))
    program = db.relationship(Program)


pages = Blueprint("programs", __name__, template_folder="templates")
api = Blueprint("programs_api", __name__, url_prefix="/api")


def create_app(overrides: dict | None = None) -> Flask:
    settings = Settings.load("programs", 5104, overrides)
    app = Flask(__name__)
    passport.init_app(app, settings, title=_l("Programs and Events"), slug="programs",
                      scope="openid profile email notification_preferences")
    app.jinja_env.filters["kind_label"] = lambda kind: labelled(KIND_LABELS, kind)
    app.register_blueprint(pages)
    app.register_blueprint(api)
    app.jinja_env.filters["local"] = lambda program: _starts_at(program).astimezone(SAST)
    with app.app_context():
        seed_programs()
    return app


def seed_programs() -> None:
    """The demo's upcoming programs, dated from today (only into an empty table)."""
    if db.session.scalar(select(func.count()).select_from(Program)):
        return
    today = datetime.now(SAST).date()
    db.session.add_all(Program(slug=slug, title=title, kind=kind, venue=venue, capacity=capacity, description=text,
                               starts_at=datetime.combine(today + timedelta(days=days), time(hour), SAST)
                               .astimezone(timezone.utc))  # SQLite keeps the wall clock, not the offset
                       for slug, title, kind, days, hour, venue, capacity, text in DEMO_PROGRAMS)
    db.session.commit()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def places_left(program: Program) -> int:
    taken = db.session.scalar(select(func.count()).select_from(Registration).where(
        Registration.program_id == program.id, Registration.cancelled_at.is_(None)))
    return max(0, program.capacity - taken)


def upcoming() -> list[Program]:
    return list(db.session.scalars(select(Program).where(Program.starts_at > _now()).order_by(Program.starts_at)))


def program_or_404(slug: str) -> Program:
    found = db.session.scalar(select(Program).where(Program.slug == slug))
    if found is None:
        abort(404)
    return found


def own_registration(program: Program, sub: str) -> Registration | None:
    return db.session.scalar(select(Registration).where(Registration.program_id == program.id,
                                                        Registration.sub == sub))


def _starts_at(program: Program) -> datetime:
    """SQLite returns naive datetimes; every datetime here is stored in UTC."""
    moment = program.starts_at
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@pages.get("/")
def home():
    return render_template("programs/home.html", programs=[(p, places_left(p)) for p in upcoming()])


@pages.get("/programs/<slug>")
def detail(slug, error: str | None = None, status: int = 200):
    program = program_or_404(slug)
    mine = own_registration(program, g.resident["sub"]) if g.resident else None
    return render_template("programs/detail.html", program=program, places=places_left(program), error=error,
                           registered=mine is not None and mine.cancelled_at is None,
                           past=_starts_at(program) <= _now(), language_next=url_for(".detail", slug=slug)), status


@pages.post("/programs/<slug>/register")
@passport.login_required()
def register(slug):
    program = program_or_404(slug)
    if _starts_at(program) <= _now():
        return detail(slug, _("This program has already started: registration is closed."), 409)
    mine = own_registration(program, g.resident["sub"])
    if mine is not None and mine.cancelled_at is None:
        return redirect(url_for(".detail", slug=slug), 303)  # already registered: nothing to do
    if places_left(program) == 0:
        return detail(slug, _("This program is full. Look for another date or a similar program."), 409)
    if mine is None:
        db.session.add(Registration(program=program, sub=g.resident["sub"], created_at=_now()))
    else:
        mine.cancelled_at, mine.created_at = None, _now()
    db.session.commit()
    return redirect(url_for(".detail", slug=slug), 303)


@pages.post("/programs/<slug>/cancel")
@passport.login_required()
def cancel(slug):
    mine = own_registration(program_or_404(slug), g.resident["sub"])
    if mine is None or mine.cancelled_at is not None:
        abort(404)
    mine.cancelled_at = _now()
    db.session.commit()
    return redirect(url_for(".registrations"), 303)


@pages.get("/registrations")
@passport.login_required()
def registrations():
    rows = db.session.scalars(select(Registration).join(Program).where(
        Registration.sub == g.resident["sub"], Registration.cancelled_at.is_(None)).order_by(Program.starts_at)).all()
    return render_template("programs/registrations.html", registrations=rows)


# --- API -----------------------------------------------------------------------------------------
@api.get("/residents/<sub>/summary")
@passport.require_token
def summary(sub):
    """The resident's registrations for programs still to come."""
    rows = db.session.scalars(select(Registration).join(Program).where(
        Registration.sub == sub, Registration.cancelled_at.is_(None), Program.starts_at > _now())
        .order_by(Program.starts_at)).all()
    items = [{"title": r.program.title, "status": "registered", "due_on": _starts_at(r.program).date().isoformat(),
              "url": passport.settings.base_url + url_for("programs.detail", slug=r.program.slug)} for r in rows]
    return {"department": "programs", "items": items, "count_open": len(items)}


@api.get("/programs")
@passport.require_token
def programs_api():
    return {"programs": [{"slug": p.slug, "title": p.title, "kind": p.kind, "starts_at": _starts_at(p).isoformat(),
                          "venue": p.venue, "places_left": places_left(p)} for p in upcoming()]}
