"""Password hashing (argon2id with explicit, bounded-concurrency parameters) and policy."""
from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_LENGTH = 256
ZXCVBN_MAX_LENGTH = 72  # zxcvbn refuses longer input; the hint looks at the first 72 characters


@dataclass(frozen=True)
class PolicyResult:
    ok: bool
    reason: str = ""


class Hasher:
    """argon2id hashing with a semaphore bounding the hashes that run at once (memory)."""

    def __init__(self, memory_kib: int, time_cost: int, parallelism: int, max_concurrent: int):
        self._ph = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                  parallelism=parallelism, hash_len=32, salt_len=16)
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._dummy = self.hash("not a real password: equalises timing for unknown accounts")

    def hash(self, password: str) -> str:
        with self._slots:
            return self._ph.hash(normalise(password))

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when the password matches. With no stored hash, spends the same time and fails."""
        with self._slots:
            try:
                return self._ph.verify(stored_hash or self._dummy, normalise(password)) and bool(stored_hash)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._ph.check_needs_rehash(stored_hash)


def normalise(password: str) -> str:
    """NFKC-normalise, so the same password typed on two keyboards matches."""
    return unicodedata.normalize("NFKC", password)


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def is_known_leaked(password: str) -> bool:
    """Whether the password (ignoring case and punctuation) is on the list of leaked passwords."""
    lowered = normalise(password).lower()
    return lowered in _common_passwords() or "".join(ch for ch in lowered if ch.isalnum()) in _common_passwords()


# Words any guesser tries first against a city login.
_CONTEXT_WORDS = ("ecitizen", "passport", "password", "capetown", "joburg", "johannesburg",
                  "tshwane", "ethekwini", "municipality", "city")


def check_policy(password: str, min_length: int, *, email: str = "", name: str = "") -> PolicyResult:
    """NIST SP 800-63B rules: length, no composition rules, refuse known and guessable passwords."""
    from flask_babel import gettext as _

    candidate = normalise(password)
    if len(candidate) < min_length:
        return PolicyResult(False, _("Use at least %(n)d characters. A few words together work well.", n=min_length))
    if len(candidate) > MAX_LENGTH:
        return PolicyResult(False, _("Use at most %(n)d characters.", n=MAX_LENGTH))
    lowered = candidate.lower()
    squashed = "".join(ch for ch in lowered if ch.isalnum())
    if lowered in _common_passwords() or squashed in _common_passwords():
        return PolicyResult(False, _("This password is too common: it appears in lists of leaked passwords. Choose another."))
    stripped = squashed.rstrip("0123456789")
    if stripped in _common_passwords() or len(set(candidate)) <= 2:
        return PolicyResult(False, _("This password is too easy to guess. Choose another."))
    local = email.strip().lower().split("@")[0]
    if (email and email.strip().lower() in lowered) or (len(local) >= 4 and local in lowered and len(squashed) - len(local) < 8):
        return PolicyResult(False, _("Do not use your email address in your password."))
    rest = squashed
    for word in _CONTEXT_WORDS:  # all of them: "ecitizen-passport-2026" is no better than one
        rest = rest.replace(word, "")
    if rest != squashed and len(rest.strip("0123456789")) < 6:
        return PolicyResult(False, _("This password is too easy to guess for this site. Choose another."))
    if name and len(name) >= 4 and name.strip().lower().replace(" ", "") == stripped:
        return PolicyResult(False, _("Do not use your name as your password."))
    return PolicyResult(True)


def strength_hint(password: str) -> int:
    """A 0–4 estimate of how hard the password is to guess (zxcvbn), for a hint only."""
    from zxcvbn import zxcvbn

    return int(zxcvbn(password[:ZXCVBN_MAX_LENGTH])["score"])
