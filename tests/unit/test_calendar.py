"""Working days on real dates: official holidays skipped, make-up workdays (调休) counted."""

from __future__ import annotations

from datetime import date

import pytest

from kuaishu.calendar import add_workdays, calendar_covers, is_workday, workdays_between


def test_ten_working_days_across_national_day_2025() -> None:
    # Oct 1–8 2025 off; Sunday Sep 28 and Saturday Oct 11 are make-up workdays.
    assert is_workday(date(2025, 9, 28)) and is_workday(date(2025, 10, 11))
    assert not is_workday(date(2025, 10, 8))
    assert add_workdays(date(2025, 9, 26), 10) == date(2025, 10, 16)


def test_national_day_2026() -> None:
    # Oct 1–7 2026 off; Sunday Sep 20 and Saturday Oct 10 are make-up workdays.
    assert is_workday(date(2026, 9, 20)) and is_workday(date(2026, 10, 10))
    assert add_workdays(date(2026, 9, 30), 2) == date(2026, 10, 9)
    assert add_workdays(date(2026, 9, 30), 10) == date(2026, 10, 20)


def test_spring_festival_2026_and_plain_weekends() -> None:
    assert not is_workday(date(2026, 2, 17))  # the first day of the year of the horse
    assert is_workday(date(2026, 2, 14))  # a make-up Saturday
    assert not is_workday(date(2026, 3, 7))  # an ordinary Saturday
    assert add_workdays(date(2026, 3, 6), 2) == date(2026, 3, 10)


def test_two_working_days_after_a_friday() -> None:
    assert add_workdays(date(2026, 11, 20), 2) == date(2026, 11, 24)


def test_between_counts_like_add() -> None:
    start = date(2025, 9, 26)
    assert workdays_between(start, add_workdays(start, 10)) == 10
    assert workdays_between(add_workdays(start, 10), start) == -10


def test_years_the_calendar_does_not_know_fall_back_to_weekdays() -> None:
    far = date(2100, 6, 7)  # a Monday
    assert not calendar_covers(far)
    assert is_workday(far) and not is_workday(date(2100, 6, 6))
    assert calendar_covers(date(2026, 1, 1))


def test_negative_days_are_refused() -> None:
    with pytest.raises(ValueError):
        add_workdays(date(2026, 1, 5), -1)
