"""The project's template tags that stand in for Django's or for an include: same output."""

import pytest
from django.template import Context, Engine, engines
from django.utils import translation

DJANGO = engines["django"]


@pytest.mark.parametrize(
    "tag",
    [
        '{% translate "Status" %}',
        "{% translate 'Log out' %}",
        '{% trans "Search" %}',
        '{% translate "Ticket %(n)s of %(total)s: %(text)s" %}',  # percent signs kept
        '{% translate "Status" noop %}',
        '{% translate "Status" context "ticket" %}',
        '{% translate "Status" as said %}[{{ said }}]',
        '{% translate "Status"|upper %}',
        "{% translate word %}",
        "{% translate word as said %}{{ said }}",
        '{% translate "no such text <b>" %}',
    ],
)
@pytest.mark.parametrize("autoescape", [True, False])
def test_translate_once_prints_what_djangos_translate_prints_in_every_language(tag, autoescape):
    # given the tag as Django's i18n library parses it, and as this one does
    if not autoescape:
        tag = "{% autoescape off %}" + tag + "{% endautoescape %}"
    django = DJANGO.from_string("{% load i18n %}" + tag)
    once = DJANGO.from_string("{% load i18n i18n_cached %}" + tag)
    context = {"word": "Priority <b>&"}

    # when each renders in turn in English, Malay and English again (the kept text per language)
    for language in ("en", "ms", "en", "ms"):
        with translation.override(language):
            # then both print the same
            assert once.render(context) == django.render(context)


def test_translate_once_translates_a_text_again_in_another_language():
    template = DJANGO.from_string('{% load i18n i18n_cached %}{% translate "Log out" %}')

    with translation.override("ms"):
        malay = template.render({})
    with translation.override("en"):
        english = template.render({})
    with translation.override("ms"):
        again = template.render({})

    assert english == "Log out"
    assert malay == again != english
    with translation.override("ms"):
        assert malay == translation.gettext("Log out")


# templates/icons/icon.html as it was before the tag replaced it
ICON_TEMPLATE = (
    '<svg class="icon{% if cls %} {{ cls }}{% endif %}" aria-hidden="true" focusable="false">'
    '<use href="#i-{{ name }}"></use></svg>\n'
)


@pytest.mark.parametrize(
    ("tag", "include"),
    [
        ('{% icon "list" %}', '{% include "icons/icon.html" with name="list" only %}'),
        (
            '{% icon "brand" "brand-mark" %}',
            '{% include "icons/icon.html" with name="brand" cls="brand-mark" only %}',
        ),
        ("{% icon name cls %}", '{% include "icons/icon.html" with name=name cls=cls only %}'),
        (
            '{% icon name|default:"info" %}',
            '{% include "icons/icon.html" with name=name|default:"info" only %}',
        ),
    ],
)
@pytest.mark.parametrize(
    ("name", "cls"), [("shield", ""), ('x"><script>1</script>', "a&b 'c'"), ("", None)]
)
def test_icon_prints_what_the_icon_template_printed_escaped(tag, include, name, cls):
    # given the icon template the pages included (given only its values, as the tag is), and
    # the tag that replaced it
    loader = ("django.template.loaders.locmem.Loader", {"icons/icon.html": ICON_TEMPLATE})
    included = Engine(loaders=[loader]).from_string(include)
    context = {"name": name, "cls": cls}

    # when each prints
    printed = DJANGO.from_string("{% load icons %}" + tag).render(context)

    # then both print the same, the values escaped
    assert printed == included.render(Context(context))
    assert "<script>" not in printed
