"""The bot challenge's puzzle: signed, solved at the stated difficulty, unexpired, used once."""
from __future__ import annotations

import hashlib
import time

import pytest

from idp.services import bot_challenge


@pytest.fixture
def puzzle(ctx):
    return bot_challenge.issue()


def test_an_answer_solves_its_puzzle_once(ctx, puzzle):
    answer = bot_challenge.solve(puzzle.puzzle, puzzle.bits)
    digest = hashlib.sha256(f"{puzzle.puzzle}:{answer}".encode()).digest()
    assert bot_challenge.leading_zero_bits(digest) >= puzzle.bits == 8
    assert bot_challenge.solved(puzzle.token, answer)
    assert not bot_challenge.solved(puzzle.token, answer)  # used


def test_wrong_forged_weak_or_expired_answers_are_refused(ctx, puzzle, monkeypatch):
    answer = bot_challenge.solve(puzzle.puzzle, puzzle.bits)
    wrong = next(str(n) for n in range(10**6) if not bot_challenge.leading_zero_bits(
        hashlib.sha256(f"{puzzle.puzzle}:{n}".encode()).digest()) >= puzzle.bits)
    assert not bot_challenge.solved(puzzle.token, wrong)
    for bad in (None, "", "-1", "1e3", "9" * 13):
        assert not bot_challenge.solved(puzzle.token, bad)
    nonce, bits, expiry = puzzle.puzzle.split(".")
    easy = f"{nonce}.0.{expiry}"  # a forged, easier puzzle under the old signature
    assert not bot_challenge.solved(easy + "." + puzzle.token.rsplit(".", 1)[1], "0")
    monkeypatch.setattr(ctx.config["IDP_SETTINGS"], "bot_challenge_bits", 12)  # made harder since it was issued
    assert not bot_challenge.solved(puzzle.token, answer)
    monkeypatch.setattr(ctx.config["IDP_SETTINGS"], "bot_challenge_bits", 8)
    monkeypatch.setattr(time, "time", lambda: int(expiry) + 1)
    assert not bot_challenge.solved(puzzle.token, answer)


def test_the_difficulty_setting_is_validated():
    from idp.config import ConfigError, load_settings

    for value in ("7", "25", "hard"):
        with pytest.raises(ConfigError) as refused:
            load_settings({"IDP_BOT_CHALLENGE_BITS": value})
        assert [p for p in refused.value.problems if p.startswith("IDP_BOT_CHALLENGE_BITS:")]
    assert load_settings({"IDP_BOT_CHALLENGE_BITS": "20"}).bot_challenge_bits == 20
