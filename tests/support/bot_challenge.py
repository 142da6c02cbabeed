"""What the sign-in page's script does for the bot challenge, for tests that post the form."""
from __future__ import annotations

import re
from html import unescape

from idp.services.bot_challenge import solve


def answered(html: str) -> dict[str, str]:
    """The challenge fields of a sign-in page, with the puzzle solved."""
    field = re.search(r'<input[^>]*data-bot-puzzle="([^"]+)"[^>]*>', html)
    assert field, "the page has no bot challenge"
    tag = field.group(0)
    token = unescape(re.search(r'value="([^"]+)"', tag).group(1))
    bits = int(re.search(r'data-bot-bits="(\d+)"', tag).group(1))
    return {"bot_challenge": token, "bot_solution": solve(unescape(field.group(1)), bits)}
