"""Opening a mailed link (reset, verify, confirm a new address, "this wasn't me") as a browser does.

Since checklist 47 a valid link answers its first GET with a 303 to the same page without the token
(the token is kept in the server-side session), and the page's form posts to that token-free
address. An invalid link answers in place with the generic 400 page, without a redirect.
"""
from __future__ import annotations

import re


def open_link(http, url: str):
    """GET the mailed ``url`` (full link or path) and follow its redirect; return the page it ends on.

    For a valid link the followed response is the page (``response.request.path`` is the token-free
    address its form posts to, ``response.history[0]`` the 303). Asserts the token left the address:
    exactly one 303, to the same page without the token. A link answered without a redirect (an
    invalid one: 400) is returned as it is, but never a page rendered with the token still in the URL.
    """
    path = re.sub(r"^https?://[^/]+", "", url)
    token = path.rstrip("/").rsplit("/", 1)[1]
    response = http.get(path, follow_redirects=True)
    if not response.history:
        assert response.status_code != 200, f"{path} was rendered with its token still in the address"
        return response
    assert len(response.history) == 1 and response.history[0].status_code == 303, \
        (path, [hop.status_code for hop in response.history])
    assert response.request.path == path.rstrip("/").rsplit("/", 1)[0], (path, response.request.path)
    assert token not in response.request.url and token not in response.history[0].headers["Location"]
    return response
