"""Chinese official working days: holidays and make-up workdays (调休) from ``chinesecalendar``.

The package carries the State Council's arrangement for each year it knows; for a year it does
not know yet we fall back to Monday–Friday and say so (:func:`calendar_covers`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import chinese_calendar


def calendar_covers(day: date) -> bool:
    """Whether the official arrangement for ``day``'s year is known."""
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        return False
    return True


def is_workday(day: date) -> bool:
    """An official working day (make-up Saturdays included, holidays excluded)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def add_workdays(start: date, days: int) -> date:
    """The date ``days`` working days after ``start`` (``start`` itself not counted)."""
    if days < 0:
        raise ValueError("days must not be negative")
    current = start
    remaining = days
    while remaining:
        current += timedelta(days=1)
        if is_workday(current):
            remaining -= 1
    return current


def workdays_between(start: date, end: date) -> int:
    """Working days after ``start`` up to and including ``end`` (negative if ``end`` is before)."""
    if end < start:
        return -workdays_between(end, start)
    return sum(1 for n in range(1, (end - start).days + 1) if is_workday(start + timedelta(n)))


def china_today() -> date:
    """Today in China (UTC+8): deadlines and data ages are counted in China's days."""
    return (datetime.now(UTC) + timedelta(hours=8)).date()
