"""Counting failures in the shared store (atomic INCR) to slow guessing down."""
from __future__ import annotations

import hashlib

from flask import current_app


def _key(kind: str, subject: str) -> str:
    # Subjects (emails, addresses) are hashed so the store holds no personal data.
    return f"throttle:{kind}:" + hashlib.sha256(subject.encode()).hexdigest()[:32]


def failures(kind: str, subject: str) -> int:
    """The current failure count for a subject."""
    value = current_app.extensions["idp.store"].get(_key(kind, subject))
    return int(value or 0)


def add_failure(kind: str, subject: str, window: int) -> int:
    """Count one more failure; the window starts at the first failure."""
    return current_app.extensions["idp.store"].incr(_key(kind, subject), window)


def reset(kind: str, subject: str) -> None:
    current_app.extensions["idp.store"].delete(_key(kind, subject))
