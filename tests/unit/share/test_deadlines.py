"""The provider's 10 working days, on the official calendar: across the National Day holiday the
deadline skips the eight days off and counts the make-up Sunday and Saturday (调休)."""

from __future__ import annotations

from datetime import date

import pytest

from kuaishu.calendar import add_workdays
from kuaishu.share.services import ANSWER_WORKDAYS


@pytest.mark.parametrize(
    ("submitted", "due"),
    [
        # 2025: 1–8 October off; Sunday 28 September and Saturday 11 October are workdays.
        (date(2025, 9, 26), date(2025, 10, 16)),  # 9/28 9/29 9/30 10/9 10/10 10/11 10/13–16
        (date(2025, 9, 30), date(2025, 10, 21)),
        (date(2025, 10, 1), date(2025, 10, 21)),  # submitted on a holiday: the same deadline
        # 2024: 1–7 October off; Sunday 29 September and Saturday 12 October are workdays.
        (date(2024, 9, 27), date(2024, 10, 16)),
        # An ordinary fortnight: two weekends.
        (date(2025, 11, 3), date(2025, 11, 17)),
    ],
)
def test_answer_deadline_on_the_official_calendar(submitted: date, due: date) -> None:
    assert ANSWER_WORKDAYS == 10
    assert add_workdays(submitted, ANSWER_WORKDAYS) == due
