"""The sign-in bot challenge (checklist 82, 83): a small proof of work the sign-in page's script
solves in the background, demanded only from browsers new to the account while that account is
under attack (half its failure limit used) or while failed sign-ins surge everywhere.

The puzzle is ``nonce.bits.expiry``, signed with the secret key, so issuing one stores nothing; the
answer is a number n such that SHA-256("puzzle:n") begins with ``bits`` zero bits
(IDP_BOT_CHALLENGE_BITS). An answer is accepted once, within CHALLENGE_TTL seconds."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from flask import current_app

from idp.security import crypto

CHALLENGE_TTL = 600
_PURPOSE = "bot-challenge"


@dataclass(frozen=True)
class Challenge:
    puzzle: str  # what the browser hashes, with ":n" after it
    bits: int
    token: str  # the puzzle and its signature, posted back with the answer


def issue() -> Challenge:
    """A fresh puzzle at the configured difficulty."""
    bits = current_app.config["IDP_SETTINGS"].bot_challenge_bits
    puzzle = f"{secrets.token_urlsafe(12)}.{bits}.{int(time.time()) + CHALLENGE_TTL}"
    return Challenge(puzzle, bits, f"{puzzle}.{crypto.keyed_digest(puzzle, _PURPOSE)[:32]}")


def leading_zero_bits(digest: bytes) -> int:
    """How many zero bits ``digest`` begins with."""
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def solve(puzzle: str, bits: int) -> str:
    """The first answer to ``puzzle`` (what the page's script computes; for tools and tests)."""
    n = 0
    while leading_zero_bits(hashlib.sha256(f"{puzzle}:{n}".encode()).digest()) < bits:
        n += 1
    return str(n)


def solved(token: str | None, answer: str | None) -> bool:
    """True when ``answer`` solves the signed, unexpired puzzle in ``token`` at (at least) today's
    difficulty, the first time it is shown."""
    if not token or not answer or not answer.isdigit() or len(answer) > 12 or len(token) > 200:
        return False
    puzzle, _, signature = token.rpartition(".")
    if not any(hmac.compare_digest(signature, digest[:32]) for digest in crypto.keyed_digests(puzzle, _PURPOSE)):
        return False
    try:
        nonce, bits, expiry = puzzle.split(".")
        bits_needed, expires_at = int(bits), int(expiry)
    except ValueError:
        return False
    if expires_at < time.time() or bits_needed < current_app.config["IDP_SETTINGS"].bot_challenge_bits:
        return False
    if leading_zero_bits(hashlib.sha256(f"{puzzle}:{answer}".encode()).digest()) < bits_needed:
        return False
    return current_app.extensions["idp.store"].add(f"{_PURPOSE}:{nonce}", "1", CHALLENGE_TTL)
