"""The API's request parsers (DEFAULT_PARSER_CLASSES).

A module of its own: rest_framework.views reads the setting when it is imported, so the parser
must not live beside code that imports rest_framework.views.
"""

from typing import Any

from rest_framework import exceptions, parsers

JSON_TOO_DEEP = "The JSON is nested too deeply."
JSON_NUL = "The JSON holds a NUL character (\\u0000)."


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; too deeply nested JSON, or a NUL in it, is a 400, not a 500.

    PostgreSQL's text columns hold no NUL: one in any string would fail the first query that
    uses it (a lookup as much as a write).
    """

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(JSON_TOO_DEEP) from None
        if _holds_nul(data):
            raise exceptions.ParseError(JSON_NUL)
        return data


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    return False
