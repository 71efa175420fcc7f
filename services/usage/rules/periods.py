"""Periods: the month each event belongs to, the days and weeks inside it, and when a period may close.

A period is a calendar month in the territory's time zone (Europe/Paris by default), named
"2026-11". Its pseudonym key lives as long as it is open (rules/pseudonyms.py). Weeks are ISO weeks
(Monday first) cut at the period's bounds: the week of 30 November 2026 to 6 December 2026 counts
as two cells, "from 30 November" in 2026-11 and "from 1 December" in 2026-12, because people
cannot be linked across periods. A period closes once it is over and a grace period has passed
(default 48 hours), so that events still queued when the month ends are counted in it.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
DEFAULT_TIMEZONE = "Europe/Paris"
DEFAULT_GRACE = timedelta(hours=48)


class PeriodError(ValueError):
    """A period that is not a month written YYYY-MM."""


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    """The day `moment` (with a time zone) falls on in the territory's time zone."""
    return moment.astimezone(zone).date()


def bounds(period: str) -> tuple[date, date]:
    """The first and the last day of `period`."""
    match = PERIOD.match(period)
    if not match:
        raise PeriodError(f"period {period!r} is not a month written YYYY-MM (e.g. 2026-11)")
    first = date(int(match[1]), int(match[2]), 1)
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def week_start(day: date) -> date:
    """The first day of `day`'s week within its period: the Monday, or the period's first day."""
    monday = day - timedelta(days=day.weekday())
    return max(monday, day.replace(day=1))


def month_start(day: date) -> date:
    return day.replace(day=1)


def end_of(period: str, zone: ZoneInfo) -> datetime:
    """The moment `period` ends: midnight after its last day, in the territory's time zone."""
    last = bounds(period)[1]
    return datetime(last.year, last.month, last.day, tzinfo=zone) + timedelta(days=1)


def closable(period: str, now: datetime, zone: ZoneInfo, grace: timedelta = DEFAULT_GRACE) -> bool:
    """Whether `period` is over and its grace has passed at `now`."""
    return now >= end_of(period, zone) + grace
