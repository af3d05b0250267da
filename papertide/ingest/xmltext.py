"""Plumbing shared by the arXiv XML formats: API Atom, OAI-PMH and the RSS/Atom listings.

* Safe parsing: every document goes through defusedxml (no entity expansion, no external
  entities or DTD retrieval), so a hostile feed cannot blow up memory or read local files.
  A document that is not well-formed XML raises :class:`BadDocument`.
* Text: element text with whitespace runs (newlines included) collapsed to one space.
* Dates: ISO 8601 (Atom, OAI-PMH) and RFC 822 (RSS), always returned timezone-aware in UTC.
* Format detection on the first bytes of a file (:func:`head_root`).

The parsers read a whole document at once: arXiv serves these formats in bounded pages
(at most 2,000 API entries or listing items, one OAI-PMH page), never as one huge file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TypeVar
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree

from papertide.catalog.records import PaperRecord, RecordError, checked_date
from papertide.errors import InvalidInput
from papertide.ingest.files import DAMAGED_GZIP, open_binary

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], None]
Item = PaperRecord | RecordError

_WHITESPACE = re.compile(r"\s+")
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_FIRST_TAG = re.compile(r"<(?![?!/])(?:[\w.-]+:)?([\w.-]+)")


class BadDocument(InvalidInput):
    """The bytes are not a well-formed document of the expected kind (the whole file fails)."""


class BadRecord(ValueError):
    """One entry cannot become a record; the other entries of the document still can."""


# --- parsing ---------------------------------------------------------------------------------


def parse_xml(data: bytes) -> Element:
    """Parse ``data`` safely, or raise BadDocument saying why it is not usable XML."""
    try:
        root: Element = defusedxml.ElementTree.fromstring(data)
    except ParseError as exc:
        raise BadDocument(f"not well-formed XML ({exc})") from None
    except defusedxml.DefusedXmlException as exc:
        raise BadDocument(f"refused unsafe XML ({type(exc).__name__}: {exc})") from None
    except (LookupError, ValueError) as exc:  # encoding="TF-8", "shift_jis", "rot13", "idna"
        raise BadDocument(f"unreadable XML encoding ({exc})") from None
    return root


def local_name(tag: str) -> str:
    """``{namespace}name`` -> ``name``."""
    return tag.rpartition("}")[2]


def read_document(path: Path) -> bytes:
    """The whole (decompressed) content of ``path``."""
    with open_binary(path) as handle:
        return handle.read()


def records_from_file(
    path: Path,
    parse_bytes: Callable[[bytes, str], list[Item]],
    fatal: tuple[type[Exception], ...] = (BadDocument,),
) -> Iterator[Item]:
    """Parse a file with a bytes-level parser; a document-level failure is one RecordError."""
    origin = str(path)
    try:
        data = read_document(path)
    except DAMAGED_GZIP:
        yield RecordError(origin, "truncated or damaged gzip file")
        return
    try:
        items = parse_bytes(data, origin)
    except fatal as exc:
        yield RecordError(origin, str(exc))
        return
    yield from items


# --- text --------------------------------------------------------------------------------------


def squash(text: str | None) -> str | None:
    """Collapse whitespace runs (newlines included) to one space and strip; empty -> None."""
    if text is None:
        return None
    return _WHITESPACE.sub(" ", text).strip() or None


def text_of(element: Element | None) -> str | None:
    """All text inside ``element``, whitespace-normalised; None when absent or empty."""
    if element is None:
        return None
    return squash("".join(element.itertext()))


def find_text(parent: Element, path: str) -> str | None:
    """Normalised text of the first ``path`` under ``parent``."""
    return text_of(parent.find(path))


def unique(values: list[str]) -> list[str]:
    """``values`` without repeats, first occurrence kept."""
    return list(dict.fromkeys(values))


# --- format detection --------------------------------------------------------------------------


def head_text(head: bytes) -> str:
    """The sniffed bytes as text (undecodable bytes replaced, BOM dropped)."""
    return head.decode("utf-8", errors="replace").lstrip("\ufeff")


def head_root(head: bytes) -> str | None:
    """Local name of the first element in ``head``, skipping the prolog and comments."""
    match = _FIRST_TAG.search(_COMMENT.sub("", head_text(head)))
    return match.group(1) if match else None


# --- dates -------------------------------------------------------------------------------------


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive value is taken to be UTC already. Raises OverflowError when
    an offset takes it past year 1 or 9999."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_iso(text: str) -> datetime:
    """ISO 8601 date or date-time (``2016-11-29T08:18:38Z``, ``2014-12-29``) -> UTC, within
    the catalog's range of years (:func:`~papertide.catalog.records.checked_date`)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadRecord(f"unreadable date {text!r}") from None
    return _in_range(value)


def parse_rfc822(text: str) -> datetime:
    """RFC 822 date (``Mon, 22 Sep 2025 00:00:00 -0400``) -> UTC, within the catalog's range."""
    try:
        value = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        raise BadRecord(f"unreadable date {text!r}") from None
    return _in_range(value)


def _in_range(value: datetime) -> datetime:
    try:
        return checked_date(value)
    except ValueError as exc:
        raise BadRecord(str(exc)) from None


def optional_date(
    text: str | None, parse: Callable[[str], datetime] = parse_iso
) -> datetime | None:
    """``parse(text)``, or None when there is no text."""
    return None if text is None else parse(text)
