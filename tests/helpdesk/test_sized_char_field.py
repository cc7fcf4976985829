"""A text field's published maxLength holds for the text as sent, padding included."""

from rest_framework import serializers

from helpdesk.api import SizedCharField


class ReasonSerializer(serializers.Serializer):
    reason = SizedCharField(max_length=10)


def test_text_padded_past_its_maximum_is_refused_though_it_would_fit_once_trimmed():
    padded = ReasonSerializer(data={"reason": "   " + "x" * 9})

    assert not padded.is_valid()
    assert padded.errors["reason"][0].code == "max_length"


def test_text_within_its_maximum_is_trimmed_as_before():
    within = ReasonSerializer(data={"reason": "  spam  "})

    assert within.is_valid()
    assert within.validated_data["reason"] == "spam"
