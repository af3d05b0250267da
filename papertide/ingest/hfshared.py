"""Helpers shared by the Hugging Face daily-papers parsers (``hf_jsonfeed`` and ``hf_api``).

Both read JSON documents or JSON lines, normalise the same kinds of values (HF paper ids,
ISO timestamps, titles), and count a listing day in a configured time zone:

* ``document_items`` walks the items of a JSON document. A valid document is parsed with
  orjson; a damaged one (truncated download, a stray byte) is read item by item up to the
  damage, so the items before it still count, and then ``BrokenJson`` says where it stopped.
* ``json_lines`` streams a JSON-lines file, one value or one error per non-blank line.
* ``parse_timestamp`` reads ISO 8601 with ``Z``, an offset, fractional seconds, or nothing:
  naive timestamps are UTC (the HF pages and the scrapers of them all write UTC).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from papertide.catalog.ids import ArxivId, parse_arxiv_id
from papertide.catalog.records import RecordError, checked_date
from papertide.errors import InvalidInput
from papertide.ingest.arxiv_names import clean_text as names_clean_text
from papertide.ingest.files import DAMAGED_GZIP, open_binary

_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 16


class BrokenJson(Exception):
    """A JSON document stops being valid at item ``index`` (None: outside any item)."""

    def __init__(self, index: int | None, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason


# --- values -----------------------------------------------------------------------------------


def parse_timestamp(value: object) -> datetime:
    """An ISO 8601 timestamp as an aware UTC datetime; naive values are taken as UTC. A date
    outside the catalog's years (:func:`~papertide.catalog.records.checked_date`) is refused."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a timestamp")
    text = value.strip()
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None
    return checked_date(moment)


def list_day(moment: datetime, tz: ZoneInfo) -> date:
    """The calendar day ``moment`` falls on in ``tz`` (daily lists are counted there)."""
    return moment.astimezone(tz).date()


def clean_text(value: object) -> str | None:
    """Runs of whitespace (arXiv's line wraps, HF's tabs) as one space, stripped; empty: None.

    The same normalisation as the arXiv parsers (:func:`papertide.ingest.arxiv_names.clean_text`,
    which also drops NUL characters and lone surrogates), so the same abstract from two sources
    is the same string; LaTeX, ``<`` and ``>`` are kept as they are.
    """
    return names_clean_text(value)


def read_arxiv_id(value: object, where: str) -> ArxivId | RecordError:
    """The normalised arXiv id in ``value`` (an id or an HF/arXiv URL), or why it is not one."""
    if value is None or value == "":
        return RecordError(where, "no paper id")
    if not isinstance(value, str):
        return RecordError(where, f"paper id {value!r} is not a string")
    try:
        return parse_arxiv_id(value)
    except InvalidInput as exc:
        return RecordError(where, exc.message)


def not_an_object(value: object, where: str) -> RecordError:
    return RecordError(where, f"expected a JSON object, found {type(value).__name__}")


# --- reading ----------------------------------------------------------------------------------


def read_bytes(path: Path) -> bytes:
    """The whole (decompressed) content of ``path``; of a truncated gzip, what could be read."""
    chunks: list[bytes] = []
    with open_binary(path) as handle:
        read = getattr(handle, "read1", handle.read)  # gzip: stops losing data at a cut
        try:
            while chunk := read(_CHUNK):
                chunks.append(chunk)
        except DAMAGED_GZIP:
            pass  # the JSON then ends early and is reported as truncated, after what was read
    return b"".join(chunks)


def first_line_object(head: bytes) -> dict[str, Any] | None:
    """The first non-blank line of ``head`` when it is a complete JSON object by itself."""
    text = head.removeprefix(_BOM).lstrip()
    line = text.partition(b"\n")[0]
    if not line.startswith(b"{"):
        return None
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def head_objects(head: bytes, max_lines: int = 20) -> Iterator[dict[str, Any]]:
    """The JSON objects standing alone on the first ``max_lines`` lines of ``head``: how a
    JSON-lines file is recognised even when its first line is damaged."""
    for line in head.removeprefix(_BOM).split(b"\n")[:max_lines]:
        if line.lstrip().startswith(b"{"):
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, dict):
                yield value


def first_char(data: bytes) -> str:
    """The first non-whitespace character of a document ('' when there is none)."""
    text = data[:4096].removeprefix(_BOM).lstrip()
    return chr(text[0]) if text else ""


def json_lines(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """``(line number, value, None)`` per non-blank line, or ``(number, None, reason)``."""
    number = 0
    with open_binary(path) as handle:
        try:
            for number, raw in enumerate(handle, start=1):
                line = raw.removeprefix(_BOM) if number == 1 else raw
                if line.strip():
                    yield number, *_load_line(line)
        except DAMAGED_GZIP:
            yield number + 1, None, "file ends early (truncated gzip)"


def _load_line(line: bytes) -> tuple[Any, str | None]:
    try:
        return orjson.loads(line), None
    except orjson.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc})"


def document_items(data: bytes, member: str | None = None) -> Iterator[tuple[int, str | None, Any]]:
    """``(index, key, value)`` for each item of a JSON document.

    Items are the elements of the top-level array, the members of the top-level object (with
    their key), or, when ``member`` is given, the elements of the array under that top-level
    key. A damaged document yields the items before the damage, then raises BrokenJson.
    """
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        yield from _salvage(data, member)
        return
    if member is not None:
        document = document.get(member) if isinstance(document, dict) else None
        if not isinstance(document, list):
            raise BrokenJson(None, f"no {member!r} array at the top level")
    if isinstance(document, list):
        for index, value in enumerate(document):
            yield index, None, value
    elif isinstance(document, dict):
        for index, (key, value) in enumerate(document.items()):
            yield index, key, value
    else:
        raise BrokenJson(None, f"expected a JSON array or object, found {type(document).__name__}")


# --- salvaging a damaged document -------------------------------------------------------------


def _salvage(data: bytes, member: str | None) -> Iterator[tuple[int, str | None, Any]]:
    text = data.removeprefix(_BOM).decode("utf-8", errors="replace")
    position = _skip(text, 0)
    if member is not None:
        position = _find_member(text, position, member)
    yield from _walk(text, position)
    raise BrokenJson(None, "not valid JSON after the last item")


def _skip(text: str, position: int) -> int:
    match = _WHITESPACE.match(text, position)
    return match.end() if match else position


def _decode(text: str, position: int, index: int | None) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text, position)
    except json.JSONDecodeError as exc:
        raise BrokenJson(index, f"truncated or invalid JSON ({exc})") from None
    except RecursionError:  # orjson refuses nesting over 1024 deep; the json module this way
        raise BrokenJson(index, "JSON nested too deeply") from None


def _expect(text: str, position: int, allowed: str, index: int | None) -> int:
    position = _skip(text, position)
    if position >= len(text) or text[position] not in allowed:
        where = "end of file" if position >= len(text) else repr(text[position])
        raise BrokenJson(index, f"truncated or invalid JSON: expected {allowed!r} at {where}")
    return position + 1


def _find_member(text: str, position: int, member: str) -> int:
    """The position of the value under top-level key ``member`` (values before it skipped)."""
    position = _expect(text, position, "{", None)
    while True:
        key, position = _decode(text, _skip(text, position), None)
        position = _skip(text, _expect(text, position, ":", None))
        if key == member:
            return position
        _, position = _decode(text, position, None)
        position = _expect(text, position, ",", None)


def _walk(text: str, position: int) -> Iterator[tuple[int, str | None, Any]]:
    """The items of the array or object starting at ``position``, up to its end or damage."""
    opening = text[position : position + 1]
    if opening not in ("[", "{"):
        raise BrokenJson(None, "truncated or invalid JSON: no array or object")
    closing = "]" if opening == "[" else "}"
    position = _skip(text, position + 1)
    index = 0
    if text.startswith(closing, position):
        return
    while True:
        key: str | None = None
        if opening == "{":
            key, position = _decode(text, _skip(text, position), index)
            position = _expect(text, position, ":", index)
        value, position = _decode(text, _skip(text, position), index)
        yield index, key, value
        index += 1
        position = _expect(text, position, "," + closing, index)
        if text[position - 1] == closing:
            return
