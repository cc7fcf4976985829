"""`{% translate %}` as Django's, with a constant text translated once per language.

Load it after i18n (`{% load i18n i18n_cached %}`): the tag keeps Django's syntax and parser,
so `makemessages` finds the texts as before and the page prints the same. Django's node makes a
lazy translation of the text and renders it on every render, about 90 Python calls a tag; the
staff ticket page has 67 of them, 6,100 of its 41,500 calls. A constant text (no variable,
filter, `context` or `as`) is rendered by Django's node once per language and kept on the node,
as the templates are kept by the cached loader; anything else is Django's node as it is.
"""

from django import template
from django.template.base import Variable
from django.template.context import Context
from django.templatetags.i18n import TranslateNode, do_translate
from django.utils.translation import get_language

register = template.Library()


class TranslateOnceNode(template.Node):
    """Django's TranslateNode, its output kept per language when its text is a constant."""

    child_nodelists = ()

    def __init__(self, node: TranslateNode) -> None:
        self.node = node
        var = node.filter_expression.var
        self.constant = (
            node.asvar is None
            and node.message_context is None
            and not node.filter_expression.filters
            and isinstance(var, Variable)
            and var.lookups is None
        )
        # A constant's text is marked safe by the template parser, so its translation is
        # printed unescaped whatever the context's autoescape: one output a language.
        self.rendered: dict[str | None, str] = {}

    def render(self, context: Context) -> str:
        if not self.constant:
            return self.node.render(context)
        language = get_language()
        try:
            return self.rendered[language]
        except KeyError:
            output = self.rendered[language] = self.node.render(context)
            return output


@register.tag("trans")
@register.tag("translate")
def translate(parser: template.base.Parser, token: template.base.Token) -> TranslateOnceNode:
    """Django's `{% translate %}`, parsed by Django; see the module's docstring."""
    return TranslateOnceNode(do_translate(parser, token))
