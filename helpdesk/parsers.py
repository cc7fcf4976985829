"""The API's request parsers (DEFAULT_PARSER_CLASSES).

A module of its own: rest_framework.views reads the setting when it is imported, so the parser
must not live beside code that imports rest_framework.views.
"""

import re
from collections.abc import Iterator
from typing import Any

from rest_framework import exceptions, parsers

JSON_TOO_DEEP = "The JSON is nested too deeply."
JSON_NUL = "The JSON holds a NUL character (\\u0000)."
JSON_SURROGATE = (
    "The JSON holds a lone UTF-16 surrogate (\\ud800 to \\udfff), which no UTF-8 text can hold."
)
_SURROGATES = re.compile("[\\ud800-\\udfff]")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; too deeply nested JSON, a NUL or a lone surrogate in it, is a 400.

    PostgreSQL's text columns hold no NUL: one in any string would fail the first query that
    uses it (a lookup as much as a write). JSON may escape half a surrogate pair (U+D800),
    which no UTF-8 text holds: DRF's text fields refuse one, but a field error that repeats the
    value (a dictionary's key, a choice) failed to render with a 500, as would any query given it.
    """

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(JSON_TOO_DEEP) from None
        if any("\x00" in text for text in _strings(data)):
            raise exceptions.ParseError(JSON_NUL)
        if any(_SURROGATES.search(text) for text in _strings(data)):
            raise exceptions.ParseError(JSON_SURROGATE)
        return data


def _strings(value: Any) -> Iterator[str]:
    """Every string in parsed JSON, keys included, at any depth.

    Walked with a list, not by recursion: JSON a few hundred levels deep is decoded, and a
    recursive walk of it ran out of Python's stack (a 500) where the decoder had not.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
