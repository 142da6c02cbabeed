"""Server-side sessions: the cookie holds only a random id; the data lives in the store.

Flask's default session is a signed cookie that cannot be revoked, so it is replaced. The
id is rotated with :func:`rotate` (at sign-in) and the record destroyed with :func:`destroy`.
"""
from __future__ import annotations

import json
import secrets

from flask import session
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from idp.store import StoreUnavailable

ANONYMOUS_TTL = 2 * 3600  # anonymous records (CSRF token, a sign-in in progress) stay small and short


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, initial=None, sid: str | None = None, new: bool = False):
        def on_update(_self):
            _self.modified = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.new = new
        self.modified = False
        self.rotate_requested = False
        self.destroy_requested = False
        self.unavailable = False


def rotate() -> None:
    """Give the current session a new id (the old one stops working)."""
    session.rotate_requested = True
    session.modified = True


def destroy() -> None:
    """Delete the session record and the cookie."""
    session.clear()
    session.destroy_requested = True


def refuse_when_unavailable() -> None:
    """``before_request`` hook: a session that could not be read is never served as anonymous."""
    if getattr(session, "unavailable", False):
        raise StoreUnavailable("the session store is not reachable")


class ServerSessionInterface(SessionInterface):
    def __init__(self, store, secure: bool, lifetime_seconds: int):
        self.store = store
        self.secure = secure
        self.cookie_name = "__Host-idp_session" if secure else "idp_session"
        self.lifetime = lifetime_seconds

    @staticmethod
    def _key(sid: str) -> str:
        return "sess:" + sid

    def open_session(self, app, request):
        sid = request.cookies.get(self.cookie_name)
        if sid and 20 <= len(sid) <= 64:
            try:
                raw = self.store.get(self._key(sid))
            except StoreUnavailable:
                # Raised again from a before_request hook, where the error handlers answer 503.
                unavailable = ServerSession(new=True)
                unavailable.unavailable = True
                return unavailable
            if raw is not None:
                return ServerSession(json.loads(raw), sid=sid)
        return ServerSession(new=True)

    def save_session(self, app, session_obj, response):
        if session_obj.unavailable:
            return
        options = dict(httponly=True, secure=self.secure, samesite="Lax", path="/")
        if session_obj.destroy_requested:
            if session_obj.sid:
                self.store.delete(self._key(session_obj.sid))
            response.delete_cookie(self.cookie_name, **options)
            return
        if not session_obj:
            if session_obj.sid and session_obj.modified:
                self.store.delete(self._key(session_obj.sid))
                response.delete_cookie(self.cookie_name, **options)
            return
        if not (session_obj.modified or session_obj.rotate_requested):
            return
        if session_obj.rotate_requested and session_obj.sid:
            self.store.delete(self._key(session_obj.sid))
            session_obj.sid = None
        if not session_obj.sid:
            session_obj.sid = secrets.token_urlsafe(32)
        ttl = self.lifetime if session_obj.get("sid") else ANONYMOUS_TTL
        self.store.set(self._key(session_obj.sid), json.dumps(dict(session_obj)), ttl)
        response.set_cookie(self.cookie_name, session_obj.sid, max_age=None, **options)
        response.vary.add("Cookie")
