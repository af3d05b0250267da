"""The validators of settings (see :mod:`papertide.config`): each raises ValueError with a
message saying what is wrong with the value."""

from __future__ import annotations

import ipaddress
import zoneinfo
from typing import Any


def timezone(value: Any) -> None:
    try:
        zoneinfo.ZoneInfo(str(value))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc


def db_url(value: Any) -> None:
    url = str(value)
    if not url.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://", "postgres://")):
        raise ValueError(
            f"{url!r} is not a database URL (expected sqlite:///path or postgresql://...)"
        )


def port(value: Any) -> None:
    if not 0 < int(value) < 65536:
        raise ValueError(f"port {value} is outside 1-65535")


def positive(value: Any) -> None:
    if value <= 0:
        raise ValueError(f"{value} must be greater than zero")


def categories(value: Any) -> None:
    for cat in value:
        if not cat or " " in cat:
            raise ValueError(f"{cat!r} is not an arXiv category such as cs.CL")


def min(value: float, minimum: float) -> None:
    if value < minimum:
        raise ValueError(f"{value} is below the minimum of {minimum}")


def http_url(value: str) -> None:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http(s) URL")


def range(value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{value} is outside {low}-{high}")


def clock(value: str) -> None:
    hours, _, minutes = value.partition(":")
    if (
        not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60)
        or len(minutes) != 2
    ):
        raise ValueError(f"{value!r} is not a time of day such as 07:00")


def mailbox(value: str) -> None:
    from email.utils import parseaddr

    address = parseaddr(value)[1]
    if "@" not in address:
        raise ValueError(f"{value!r} has no email address (expected Name <user@example.org>)")


def choice(value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{value!r} is not one of {', '.join(choices)}")


def ip_networks(value: list[str]) -> None:
    """Addresses or networks (``10.0.0.0/8``), or ``*`` alone: uvicorn would silently take a
    malformed one as a literal that never matches."""
    if "*" in value and len(value) > 1:
        raise ValueError("'*' trusts every peer: give it alone, not with addresses")
    for item in value:
        if item == "*":
            continue
        try:
            if "/" in item:
                ipaddress.ip_network(item)
            else:
                ipaddress.ip_address(item)
        except ValueError as exc:
            raise ValueError(f"{item!r} is not an IP address or network: {exc}") from None
