"""Cron schedules, read in China time (the calendar departments work to)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from croniter import croniter

from kuaishu.errors import ValidationFailed

CHINA = timezone(timedelta(hours=8))


def validate(expression: str) -> str:
    if not croniter.is_valid(expression):
        raise ValidationFailed(
            "定时表达式“{expr}”无效（应为 5 段 cron，如 0 2 * * *）。",
            code="schedule_invalid",
            expr=expression,
        )
    return expression


def next_after(expression: str, moment: datetime) -> datetime:
    """The next time ``expression`` fires after ``moment`` (UTC in, UTC out)."""
    validate(expression)
    local = moment.astimezone(CHINA)
    fired: datetime = croniter(expression, local).get_next(datetime)
    return fired.astimezone(UTC)
