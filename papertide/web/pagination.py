"""Cursor pagination for the JSON API: opaque, signed cursors over a stable ordering key.

A list is ordered by a *keyset*: columns that together order every row uniquely (the list's
sort value, then an id as tie-breaker). A page is the ``limit`` rows after the last row of the
previous page, found with ``WHERE (k1, k2, ...) > (v1, v2, ...)`` in the list's own directions,
so rows added or removed meanwhile shift nothing: a walk sees each row that stayed in the list
exactly once (a row whose sort value changes during the walk, such as upvotes, may be seen twice
or not at all). Lists ranked outside SQL (search, the personal feed) use an offset instead.

A cursor is ``base64url(JSON).base64url(HMAC)``: it names the list it belongs to (a digest of
the endpoint and its filters) and the key values of the last row, and is signed with the site
secret, so a changed or foreign cursor is refused with 400 instead of paging something else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, false, or_

from papertide.errors import InvalidInput

Kind = Literal["int", "float", "str", "date", "datetime"]
_SIG_BYTES = 12
MAX_CURSOR = 600


@dataclass(frozen=True, slots=True)
class Key:
    """One column of an ordering: its SQL expression, direction and value type."""

    column: ColumnElement[Any]
    kind: Kind
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Keyset:
    keys: tuple[Key, ...]

    def order_by(self) -> list[ColumnElement[Any]]:
        return [k.column.desc() if k.descending else k.column.asc() for k in self.keys]

    def after(self, values: Sequence[Any]) -> ColumnElement[bool]:
        """Rows strictly after ``values`` in this order: (k1 > v1) or (k1 = v1 and k2 > v2)..."""
        branches = []
        for n, key in enumerate(self.keys):
            equal = [k.column == v for k, v in zip(self.keys[:n], values[:n], strict=True)]
            beyond = key.column < values[n] if key.descending else key.column > values[n]
            branches.append(and_(*equal, beyond))
        return or_(false(), *branches)

    @property
    def kinds(self) -> tuple[Kind, ...]:
        return tuple(k.kind for k in self.keys)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _typed(value: Any, kind: Kind) -> Any:
    """A JSON value back as ``kind``; ValueError when it is not one."""
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    if kind == "datetime" and isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive datetime")
        return parsed
    raise ValueError(f"{value!r} is not a {kind}")


class Cursors:
    """Makes and reads the cursors of one site (``secret`` is the site's signing secret)."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"papertide-api-cursor", hashlib.sha256).digest()

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:_SIG_BYTES])

    @staticmethod
    def _scope(scope: str) -> str:
        return hashlib.sha256(scope.encode()).hexdigest()[:16]

    def make(self, scope: str, values: Sequence[Any]) -> str:
        """The cursor for the rows after ``values`` in the list named ``scope``."""
        payload = {"s": self._scope(scope), "v": [_plain(v) for v in values]}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def read(self, scope: str, cursor: str, kinds: Sequence[Kind]) -> list[Any]:
        """The key values in ``cursor``; InvalidInput when it was altered, belongs to another
        list (other filters, another endpoint) or is not one of ours."""
        body, _, signature = cursor.partition(".")
        if not body or not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            raise InvalidInput(
                "cursor: not a cursor this API gave out (altered or cut short); "
                "start again without one"
            )
        try:
            payload = json.loads(_unb64(body))
            if payload["s"] != self._scope(scope):
                raise InvalidInput(
                    "cursor: it belongs to another list or other filters; pass the same "
                    "parameters as the request that returned it, or start again without one"
                )
            values = payload["v"]
            if len(values) != len(kinds):
                raise ValueError("wrong number of values")
            return [_typed(v, k) for v, k in zip(values, kinds, strict=True)]
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise InvalidInput(f"cursor: not readable ({exc})") from None

    def offset(self, scope: str, cursor: str | None) -> int:
        """The offset an offset cursor carries (0 without a cursor)."""
        if cursor is None:
            return 0
        (value,) = self.read(scope, cursor, ("int",))
        if value < 0:
            raise InvalidInput("cursor: negative offset")
        return int(value)
