import re


def comparable(html: str) -> str:
    """A page body with what differs on every render (references, CSRF masks) blanked out."""
    html = re.sub(r"HD-[0-9A-Z]{8}", "HD-X", html)
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', 'name="csrfmiddlewaretoken"', html)
