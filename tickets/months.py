"""Calendar months, as the statistics store and the dashboard read them."""

from datetime import date, timedelta


def next_month(day: date) -> date:
    """The first day of the month after the one `day` is in."""
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)
