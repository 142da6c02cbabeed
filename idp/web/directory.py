"""Public pages for finding things: the services directory (by category or search), help for
common problems, and how to contact the city."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request

from idp.services import directory
from idp.services import help as help_topics

bp = Blueprint("directory", __name__)
MAX_QUERY = 100


@bp.get("/services")
def search():
    """Search results (a plain GET form, so it works without JavaScript)."""
    query = (request.args.get("q") or "").strip()[:MAX_QUERY]
    return render_template("directory/results.html", query=query, results=directory.search(query),
                           answers=help_topics.search(query), categories=directory.CATEGORIES)


@bp.get("/services/category/<slug>")
def category(slug: str):
    if slug not in directory.CATEGORIES:
        abort(404)
    return render_template("directory/category.html", slug=slug, label=directory.CATEGORIES[slug],
                           results=directory.in_category(slug), categories=directory.CATEGORIES)


@bp.get("/help")
def help_index():
    return render_template("directory/help.html", topics=help_topics.TOPICS)


@bp.get("/help/<slug>")
def help_topic(slug: str):
    topic = help_topics.find(slug)
    if topic is None:
        abort(404)
    return render_template("directory/help_topic.html", topic=topic)


@bp.get("/contact")
def contact():
    settings = current_app.config["IDP_SETTINGS"]
    return render_template("directory/contact.html", email=settings.support_email, phone=settings.support_phone,
                           hours=settings.support_hours)
