"""The API's request parsers (DEFAULT_PARSER_CLASSES).

A module of its own: rest_framework.views reads the setting when it is imported, so the parser
must not live beside code that imports rest_framework.views.
"""

from typing import Any

from rest_framework import exceptions, parsers

JSON_TOO_DEEP = "The JSON is nested too deeply."


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; JSON nested deeper than Python can decode is a 400, not a 500."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(JSON_TOO_DEEP) from None
