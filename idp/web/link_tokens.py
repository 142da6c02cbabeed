"""Emailed link tokens leave the address bar on first load (checklist 47).

A link's GET checks its token, keeps it in the server-side session and redirects to the same page
without it, so the token is not left in the browser's history, a ``Referer`` or a screenshot of
the address bar. The page's form posts to the token-free address; a post to the token address
(a page opened before an upgrade) still works.
"""
from __future__ import annotations

from flask import redirect, session, url_for

_PREFIX = "link-token:"


def move_out_of_url(kind: str, token: str, endpoint: str):
    """Keep ``token`` for the ``kind`` page and redirect (303) to ``endpoint``, its token-free address."""
    session[_PREFIX + kind] = token
    return redirect(url_for(endpoint), code=303)


def held(kind: str, token_in_url: str | None = None) -> str:
    """The token of the ``kind`` page: the one in the URL when posted there, else the one kept."""
    return token_in_url or session.get(_PREFIX + kind) or ""


def drop(kind: str) -> None:
    """Forget the kept token once its link was used."""
    session.pop(_PREFIX + kind, None)
