"""The public services directory: every listed city service, by category or by search."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from idp.services import directory

bp = Blueprint("directory", __name__)
MAX_QUERY = 100


@bp.get("/services")
def search():
    """Search results (a plain GET form, so it works without JavaScript)."""
    query = (request.args.get("q") or "").strip()[:MAX_QUERY]
    return render_template("directory/results.html", query=query, results=directory.search(query),
                           categories=directory.CATEGORIES)


@bp.get("/services/category/<slug>")
def category(slug: str):
    if slug not in directory.CATEGORIES:
        abort(404)
    return render_template("directory/category.html", slug=slug, label=directory.CATEGORIES[slug],
                           results=directory.in_category(slug), categories=directory.CATEGORIES)
