"""The public services directory: department clients listed with a category, a link and the words
residents use, found by a search that forgives typos and knows everyday words ("pothole",
"rates", "water leak") for what each department does."""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from idp.extensions import db
from idp.models import Client
from idp.services import DomainError
from idp.services.clients import validate_uri

CATEGORIES = {
    "bills-and-payments": _l("Bills and payments"),
    "permits-and-licences": _l("Permits and licences"),
    "report-a-problem": _l("Report a problem"),
    "programs-and-events": _l("Programs and events"),
    "other": _l("Other services"),
}
# Everyday words and the words a listing is likely to use for the same thing.
SYNONYMS = {
    "rates": {"bills", "payments", "account"}, "bill": {"bills"}, "pay": {"payments", "bills"},
    "statement": {"bills", "account"}, "arrears": {"bills", "payments"}, "owe": {"bills"},
    "pothole": {"roads", "problem"}, "road": {"roads"}, "leak": {"water", "problem"}, "burst": {"pipe", "water"},
    "streetlight": {"electricity", "problem"}, "outage": {"electricity", "problem"}, "power": {"electricity"},
    "refuse": {"waste", "problem"}, "rubbish": {"refuse", "waste"}, "garbage": {"refuse", "waste"},
    "trash": {"refuse", "waste"}, "bin": {"refuse", "waste"}, "sewage": {"problem"}, "drain": {"sewage", "problem"},
    "noise": {"problem"}, "complaint": {"problem", "report"}, "fault": {"problem", "report"},
    "licence": {"permits"}, "license": {"licence", "permits"}, "permit": {"permits"}, "build": {"building"},
    "event": {"events"}, "workshop": {"programs", "events"}, "meeting": {"events"}, "course": {"programs"},
}
# Everyday words in the other official languages we offer, as the English word they mean (the
# examples the search box gives in each language are among them).
TRANSLATED_WORDS = {
    # Afrikaans
    "slaggat": "pothole", "slaggate": "pothole", "waterlek": "leak", "lek": "leak", "eiendomsbelasting": "rates",
    "straatlig": "streetlight", "straatligte": "streetlight", "vullis": "refuse", "permitte": "permit",
    "klagte": "complaint", "klagtes": "complaint", "rekening": "bill", "betaal": "pay", "pad": "road",
    # isiXhosa
    "umngxuma": "pothole", "imingxuma": "pothole", "endleleni": "road", "ukuvuza": "leak", "amanzi": "water",
    "kwamanzi": "water", "irhafu": "rates", "iirhafu": "rates", "isibane": "streetlight", "izibane": "streetlight",
    "inkunkuma": "refuse", "imvume": "permit", "iimvume": "permit", "isikhalazo": "complaint", "ibhili": "bill",
    # isiZulu
    "umgodi": "pothole", "imigodi": "pothole", "emgwaqweni": "road", "avuzayo": "leak", "izintela": "rates",
    "intela": "rates", "isibani": "streetlight", "izibani": "streetlight", "udoti": "refuse", "izimvume": "permit",
    # Sesotho
    "mokoti": "pothole", "mekoti": "pothole", "tseleng": "road", "ditseleng": "road", "dutla": "leak",
    "metsi": "water", "ditefiso": "rates", "lebone": "streetlight", "mabone": "streetlight",
    "matlakala": "refuse", "phemiti": "permit", "diphemiti": "permit", "ngongoreho": "complaint", "bili": "bill",
}
STOP_WORDS = {"a", "an", "the", "my", "i", "to", "for", "of", "in", "on", "and", "is", "at", "with", "how", "do"}
WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Listing:
    client_id: str
    name: str
    description: str
    category: str
    url: str
    has_logo: bool
    words: frozenset

    @property
    def category_label(self) -> str:
        return str(CATEGORIES.get(self.category, CATEGORIES["other"]))


def _words(text: str) -> set[str]:
    found = set()
    for word in WORD.findall(text.lower()):
        if word in STOP_WORDS:
            continue
        found.add(word)
        if len(word) > 4 and word.endswith("s"):
            found.add(word[:-1])  # "potholes" → "pothole"
    return found


def check_listing(*, listed: bool, category: str | None = None, service_url: str | None = None,
                  keywords: str = "") -> dict:
    """The listing fields, checked (raises DomainError); nothing is written."""
    keywords = " ".join((keywords or "").split())
    if not listed:
        return {"listed": False}
    if category not in CATEGORIES:
        raise DomainError("invalid_category", f"category must be one of {', '.join(CATEGORIES)}")
    if not service_url:
        raise DomainError("invalid_uri", "a listed service needs its link (the department's home page)")
    validate_uri(service_url, "service link")
    if len(service_url) > 2000 or len(keywords) > 500:
        raise DomainError("invalid_listing", "the link must be at most 2000 and the keywords 500 characters")
    return {"listed": True, "category": category, "service_url": service_url, "keywords": keywords}


def set_listing(client: Client, *, commit: bool = True, **fields) -> dict:
    """List a client in the directory (or take it out) after checking every field; returns what
    changed as {field: [before, after]}."""
    checked = check_listing(**fields)
    changes = {name: [getattr(client, name), value] for name, value in checked.items()
               if getattr(client, name) != value}
    for name, value in checked.items():
        setattr(client, name, value)
    if commit:
        db.session.commit()
    return changes


def listings() -> list[Listing]:
    """Every listed, active service, by name."""
    rows = db.session.scalars(db.select(Client).where(Client.listed.is_(True), Client.disabled.is_(False))
                              .order_by(Client.name))
    result = []
    for client in rows:
        label = str(CATEGORIES.get(client.category or "other", CATEGORIES["other"]))
        words = _words(" ".join((client.name, client.purpose or "", label, client.keywords or "")))
        result.append(Listing(client.client_id, client.name, client.purpose or "", client.category or "other",
                              client.service_url or "", client.logo is not None, frozenset(words)))
    return result


def in_category(category: str) -> list[Listing]:
    return [listing for listing in listings() if listing.category == category]


def _meanings(word: str, vocabulary: set[str]) -> tuple[set[str], set[str]]:
    """The word itself (or, for a typo, the nearest known words) and its everyday synonyms."""
    exact = {word, TRANSLATED_WORDS.get(word, word)}
    if not {word} & (vocabulary | SYNONYMS.keys() | TRANSLATED_WORDS.keys()) and len(word) > 3:
        exact |= set(difflib.get_close_matches(word, vocabulary | set(SYNONYMS), n=3, cutoff=0.75))
    related = set().union(*(SYNONYMS.get(w, set()) for w in exact)) - exact
    return exact, related


def rank(query: str, candidates: list) -> list:
    """The candidates (anything with ``name`` and ``words``) matching the query, best first: each
    query word counts twice when a candidate uses that word (or the word a typo meant) and once
    when it uses a synonym."""
    asked = _words(query or "")
    if not asked or not candidates:
        return []
    vocabulary = set().union(*(candidate.words for candidate in candidates))
    meanings = [_meanings(word, vocabulary) for word in asked if not (word.endswith("s") and word[:-1] in asked)]
    scored = []
    for candidate in candidates:
        score = sum(2 if exact & candidate.words else 1 if related & candidate.words else 0
                    for exact, related in meanings)
        if score:
            scored.append((-score, candidate.name.lower(), candidate))
    return [candidate for *_, candidate in sorted(scored, key=lambda item: item[:2])]


def search(query: str) -> list[Listing]:
    """Listed services matching the query, best first."""
    return rank(query, listings())


def words_of(text: str) -> frozenset:
    """The searchable words of a text (for other searchable things, such as help topics)."""
    return frozenset(_words(text))
