"""Checks shared by the IdP's and the departments' translation tests: a catalogue translates
every entry of its template and keeps each entry's placeholders and markup."""
from __future__ import annotations

import io
import re
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|%[sd]|\{\w*\}")
TAG = re.compile(r"</?[a-zA-Z][^>]*>")


def catalogue(path: Path):
    """The catalogue (.po or .pot) at ``path``."""
    with open(path, "rb") as handle:
        return read_po(handle)


def translation_problems(template_path: Path, catalogue_path: Path) -> list[str]:
    """What is untranslated, fuzzy, or has other placeholders or markup than the English; the
    catalogue must also compile."""
    translations = catalogue(catalogue_path)
    problems = []
    for message in catalogue(template_path):
        if not message.id:
            continue
        found = translations.get(message.id)
        strings = [] if found is None else list(found.string) if isinstance(found.string, tuple) else [found.string]
        if found is None or not all(strings) or found.fuzzy:
            problems.append(f"untranslated: {message.id!r}")
            continue
        source = message.id if isinstance(message.id, str) else message.id[0]
        for text in strings:
            if sorted(PLACEHOLDER.findall(text)) != sorted(PLACEHOLDER.findall(source)):
                problems.append(f"placeholders differ: {source!r} -> {text!r}")
            if sorted(TAG.findall(text)) != sorted(TAG.findall(source)):
                problems.append(f"markup differs: {source!r} -> {text!r}")
    write_mo(io.BytesIO(), translations)  # raises if it does not compile
    return problems
