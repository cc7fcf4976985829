"""`{% icon "list" %}`: an icon of the page's sprite (icons/sprite.html)."""

import html

from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.simple_tag
def icon(name: str, cls: str = "") -> SafeString:
    """The `<svg>` that shows the sprite's symbol `i-<name>`, with the extra class `cls` if any.

    Icons are decoration: hidden from screen readers, the text beside them says it. Written here
    rather than as an included template: an include took about 95 Python calls an icon, six to
    eight on every staff page. The newline after it is the one the template's file ended with.
    """
    classes = f"icon {html.escape(cls)}" if cls else "icon"
    return mark_safe(  # escaped values
        f'<svg class="{classes}" aria-hidden="true" focusable="false">'
        f'<use href="#i-{html.escape(name)}"></use></svg>\n'
    )
