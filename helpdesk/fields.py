"""Form and API fields for an email address: the one rule (`helpdesk.validators`) at every edge.

Django's EmailField and DRF's accept addresses another program reads otherwise (a quoted local
part, an IP literal); these accept only what `address_normalised` does, and clean a value to
the form it is stored in.
"""

from typing import Any

from django import forms

from helpdesk.api import SizedCharField
from helpdesk.validators import ADDRESS_MAX, address_normalised


class AddressFormField(forms.CharField):
    """A form's email address: refused with the one rule's message, cleaned to its stored form."""

    widget = forms.EmailInput

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", ADDRESS_MAX)
        super().__init__(**kwargs)

    def clean(self, value: Any) -> str:
        value = super().clean(value)
        return address_normalised(value) if value else value


class AddressSerializerField(SizedCharField):
    """An API input's email address, by the same rule as AddressFormField."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", ADDRESS_MAX)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        return address_normalised(value) if value else value
