"""What every HTML view needs of a selector's answer."""

from typing import TypeVar

from django.http import Http404

T = TypeVar("T")


def found_or_404(found: T | None) -> T:
    """What a selector found, or a 404: it answers None for "not there" and "not yours" alike."""
    if found is None:
        raise Http404
    return found
