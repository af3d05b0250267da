"""Polite HTTP for the live arXiv fetchers.

One :class:`PoliteGetter` per harvest: our User-Agent, a fixed pause between requests (arXiv
asks for 3 s), ``Retry-After`` honoured (seconds or an HTTP date), connection errors, 429 and
5xx retried with exponential backoff, anything else a clear :class:`FetchError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx

from papertide.errors import PapertideError
from papertide.ingest.xmltext import BadDocument, as_utc, squash

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], None]


class FetchError(PapertideError):
    """A live fetch failed for good: retries exhausted, or the server refused the request."""

    status = 502
    code = "upstream_failed"


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """An HTTP ``Retry-After`` value (seconds or HTTP-date) as seconds from ``now``."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # "²".isdigit() holds, but float("²") fails
        return float(text)
    try:
        when = as_utc(parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


MAX_WAIT = 600.0  # a server asking for a longer pause than this gets a FetchError instead


def build_client(
    user_agent: str, *, timeout: float = 60.0, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """An HTTP client for the live fetchers: our User-Agent, a timeout, redirects followed."""
    return httpx.Client(
        headers={"User-Agent": user_agent},
        timeout=timeout,
        follow_redirects=True,
        transport=transport,
    )


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: str
    retry_after: float | None = None


@dataclass(slots=True)
class PoliteGetter:
    """GETs that keep arXiv's rules: one harvest, one getter.

    Waits ``interval`` seconds before every request but the first, and longer when the
    server sent ``Retry-After`` or a retry backs off (``interval * 2**n``). Connection errors,
    HTTP 429 and 5xx are retried up to ``max_retries`` times; other errors raise at once.
    """

    client: httpx.Client
    interval: float = 3.0
    sleep: Sleep = time.sleep
    max_retries: int = 5
    _started: bool = field(default=False, init=False)

    def get(self, url: str, params: Mapping[str, str | int]) -> httpx.Response:
        failures = 0
        wait = 0.0
        while True:
            self._pause(wait)
            outcome = self._attempt(url, params)
            if isinstance(outcome, httpx.Response):
                return outcome
            failures += 1
            if failures > self.max_retries:
                raise FetchError(f"GET {url} failed {failures} times; last: {outcome.reason}")
            wait = self._backoff(url, outcome, failures)

    def _pause(self, wait: float) -> None:
        if self._started:
            self.sleep(max(self.interval, wait))
        self._started = True

    def _attempt(self, url: str, params: Mapping[str, str | int]) -> httpx.Response | _Failure:
        try:
            response = self.client.get(url, params=params)
        except httpx.TransportError as exc:
            return _Failure(f"{type(exc).__name__}: {exc}")
        status = response.status_code
        if response.is_success:
            return response
        if status == 429 or status >= 500:
            return _Failure(
                f"HTTP {status}", retry_after_seconds(response.headers.get("Retry-After"))
            )
        snippet = squash(response.text[:200]) or "(empty body)"
        raise FetchError(f"GET {response.url} answered HTTP {status}: {snippet}")

    def _backoff(self, url: str, failure: _Failure, failures: int) -> float:
        wait = failure.retry_after
        if wait is None:
            wait = self.interval * 2 ** (failures - 1)
        if wait > MAX_WAIT:
            raise FetchError(f"GET {url}: server asks to wait {wait:.0f} s; try again later")
        log.warning("GET %s: %s; retrying in %.0f s", url, failure.reason, max(wait, self.interval))
        return wait


def parse_fetched(
    parse_bytes: Callable[[bytes, str], T], response: httpx.Response, origin: str
) -> T:
    """Parse a fetched body; a body that is not the expected document is a FetchError."""
    try:
        return parse_bytes(response.content, origin)
    except BadDocument as exc:
        raise FetchError(f"{origin}: {exc.message}") from exc
