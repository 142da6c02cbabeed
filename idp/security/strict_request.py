"""Requests must be UTF-8: a query string or urlencoded form whose percent-escapes do not decode
(invalid or overlong sequences, CESU-8 lone surrogates) is refused with 400. Werkzeug would keep
such bytes as literal ``%XX`` text, which then reaches identifiers, names and lookups as data
nobody typed. A NUL character anywhere in them, and JSON nested too deeply for the parser, are a
400 too, not a 500."""
from __future__ import annotations

from urllib.parse import parse_qsl

from flask import Request
from werkzeug.exceptions import BadRequest
from werkzeug.formparser import FormDataParser
from werkzeug.utils import cached_property


def _strict_pairs(raw: bytes) -> list[tuple[str, str]]:
    """Name/value pairs of a query string or form; 400 for undecodable bytes or a NUL (no field
    ever holds one, and PostgreSQL cannot store it)."""
    try:
        pairs = parse_qsl(raw.decode(), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("the request is not valid UTF-8") from None
    if any("\x00" in name or "\x00" in value for name, value in pairs):
        raise BadRequest("the request holds a NUL character")
    return pairs


class StrictFormDataParser(FormDataParser):
    """Parses ``application/x-www-form-urlencoded`` bodies as strict UTF-8."""

    def _parse_urlencoded(self, stream, mimetype, content_length, options):
        return stream, self.cls(_strict_pairs(stream.read())), self.cls()


class StrictRequest(Request):
    """Flask's request, with query strings and urlencoded forms decoded as strict UTF-8 and
    over-deep JSON refused."""

    form_data_parser_class = StrictFormDataParser

    @cached_property
    def args(self):
        return self.parameter_storage_class(_strict_pairs(self.query_string))

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True):
        """Flask's ``get_json``; a body nested too deeply to parse, or holding a NUL character
        (written ``\\u0000`` in JSON), is bad JSON like any other."""
        try:
            found = super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            if silent:
                return None
            raise BadRequest("the JSON body is nested too deeply") from None
        if found is not None and "\x00" in self.get_data(as_text=True).replace("\\u0000", "\x00"):
            if silent:
                return None
            raise BadRequest("the request holds a NUL character")
        return found
