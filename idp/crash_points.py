"""Deterministic crash points for fault-injection tests: with ``IDP_ENV=test`` and
``IDP_TEST_CRASH_FILE`` naming a file, a request whose endpoint the file names dies (SIGKILL of
its own process) just before or just after its n-th database commit.

The file holds one line ``<before|after> <endpoint> <n>``, e.g. ``after oidc.token 2``; it is
removed when the crash happens, so each arming kills one request. In any other environment the
variable is ignored and nothing is installed.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.orm import Session

ENV_VAR = "IDP_TEST_CRASH_FILE"
EXTENSION = "idp.crash_file"
_installed = False


def init_app(app: Flask) -> None:
    """Arm the crash points for this application when the environment asks for them (tests only)."""
    global _installed
    path = os.environ.get(ENV_VAR)
    if app.config["IDP_SETTINGS"].env != "test" or not path:
        return
    app.extensions[EXTENSION] = Path(path)
    if not _installed:
        event.listen(Session, "before_commit", lambda _session: _maybe_crash("before"))
        event.listen(Session, "after_commit", lambda _session: _maybe_crash("after"))
        _installed = True


def _maybe_crash(phase: str) -> None:
    if not has_request_context() or EXTENSION not in current_app.extensions:
        return
    if phase == "before":
        g.crash_point_commits = g.get("crash_point_commits", 0) + 1
    path: Path = current_app.extensions[EXTENSION]
    try:
        armed = path.read_text().split()
    except FileNotFoundError:
        return
    if armed != [phase, request.endpoint or "", str(g.get("crash_point_commits", 0))]:
        return
    try:
        path.unlink()  # one crash per arming (another thread may have taken it)
    except FileNotFoundError:
        return
    die()


def die() -> None:
    """End this process at once, as ``kill -9`` would (no cleanup, no response)."""
    os.kill(os.getpid(), signal.SIGKILL)
