"""arXiv over OAI-PMH 2.0: ``ListRecords`` (and ``GetRecord``) with ``metadataPrefix=arXiv``.

The format (https://info.arxiv.org/help/oa/index.html, OAI-PMH 2.0 protocol)::

    <OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">
      <ListRecords>
        <record>
          <header [status="deleted"]>          deleted records have a header and no metadata
            <identifier>oai:arXiv.org:1412.8544</identifier>
            <datestamp>2015-01-03</datestamp>  last change of the record, not a paper date
          </header>
          <metadata>
            <arXiv xmlns="http://arxiv.org/OAI/arXiv/">
              <id>1412.8544</id> <created>2014-12-29</created> [<updated>…</updated>]
              <authors><author><keyname/><forenames/>[<suffix/>]<affiliation/>*</author>*</authors>
              <title/> <categories>cs.DM math.CO</categories>   (space-separated, primary first)
              [<comments/> <report-no/> <msc-class/> <acm-class/> <journal-ref/> <doi/>]
              <license/> <abstract/>
            </arXiv>
          </metadata>
        </record>
        <resumptionToken completeListSize=".." cursor="..">token</resumptionToken>
      </ListRecords>
    </OAI-PMH>

``created`` is the v1 date and ``updated`` the latest version's date, days only: records get
``published_at``/``updated_at`` at midnight UTC and no version number. An empty or missing
resumption token ends the list; since 2025 arXiv leaves out completeListSize and cursor.
``<error code="noRecordsMatch">`` is an empty result; any other error code raises OaiError.
A busy server answers HTTP 503 with ``Retry-After``; the fetcher waits and asks again.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

import httpx

from papertide.catalog.ids import parse_arxiv_id
from papertide.catalog.records import Author, PaperRecord, RecordError, arxiv_categories
from papertide.errors import InvalidInput, PapertideError
from papertide.ingest.polite_http import FetchError, PoliteGetter, Sleep, parse_fetched
from papertide.ingest.xmltext import (
    BadDocument,
    BadRecord,
    Item,
    find_text,
    head_root,
    head_text,
    local_name,
    optional_date,
    parse_xml,
    records_from_file,
    text_of,
)

FORMAT = "oai-pmh"

OAI = "{http://www.openarchives.org/OAI/2.0/}"
META = "{http://arxiv.org/OAI/arXiv/}"
_NO_RECORDS = "noRecordsMatch"


class OaiError(PapertideError):
    """The repository answered with an OAI-PMH error (badResumptionToken, badArgument, ...)."""

    status = 502
    code = "oai_error"

    def __init__(self, oai_code: str, text: str | None) -> None:
        super().__init__(f"OAI-PMH error {oai_code}: {text or 'no message'}")
        self.oai_code = oai_code


@dataclass(slots=True)
class ListRecordsPage:
    """One ListRecords response. ``resumption_token`` is None on the last page.

    ``deleted`` counts the records with ``status="deleted"`` headers, which were skipped.
    ``response_date`` is the server's clock: the ``from`` date of the next incremental harvest.
    """

    records: list[Item]
    resumption_token: str | None = None
    complete_list_size: int | None = None
    cursor: int | None = None
    deleted: int = 0
    response_date: datetime | None = None


def sniff(head: bytes) -> bool:
    """An OAI-PMH response (root element OAI-PMH in the OAI 2.0 namespace)."""
    namespace = "http://www.openarchives.org/OAI/2.0/"
    return head_root(head) == "OAI-PMH" and namespace in head_text(head)


def parse(path: Path, tz: ZoneInfo) -> Iterator[Item]:
    """Records of a saved ListRecords/GetRecord response. ``tz`` is unused (dates are UTC)."""
    yield from records_from_file(
        path,
        lambda data, origin: parse_list_records(data, origin).records,
        fatal=(BadDocument, OaiError),
    )


def parse_list_records(data: bytes, origin: str) -> ListRecordsPage:
    """One ListRecords (or GetRecord) response; raises OaiError for OAI-PMH errors."""
    root = parse_xml(data)
    if root.tag != f"{OAI}OAI-PMH":
        raise BadDocument(f"root element is <{root.tag}>, not an OAI-PMH 2.0 response")
    page = ListRecordsPage([], response_date=_response_date(root))
    if _is_empty_result(root):
        return page
    container = _container(root)
    for number, element in enumerate(container.iterfind(f"{OAI}record"), start=1):
        if _is_deleted(element):
            page.deleted += 1
        else:
            page.records.append(_record(element, f"{origin} record {number}"))
    _read_token(container.find(f"{OAI}resumptionToken"), page)
    return page


def fetch_list_records(
    client: httpx.Client,
    base_url: str,
    *,
    metadata_prefix: str = "arXiv",
    set_spec: str | None = None,
    from_date: date | None = None,
    until_date: date | None = None,
    resumption_token: str | None = None,
    interval: float = 3.0,
    sleep: Sleep = time.sleep,
    max_retries: int = 5,
) -> Iterator[ListRecordsPage]:
    """Harvest page after page, or resume from a stored ``resumption_token``.

    Store each page's ``resumption_token`` once its records are committed: a harvest that was
    killed resumes from there. Requests are ``interval`` seconds apart (longer when the server
    sends Retry-After or a retry backs off).
    """
    getter = PoliteGetter(client, interval=interval, sleep=sleep, max_retries=max_retries)
    if resumption_token:
        params = _resume_params(resumption_token)
    else:
        params = _first_params(metadata_prefix, set_spec, from_date, until_date)
    for number in itertools.count(1):
        response = getter.get(base_url, params)
        page = parse_fetched(parse_list_records, response, f"{base_url} page {number}")
        yield page
        if page.resumption_token is None:
            return
        if page.resumption_token == params.get("resumptionToken"):
            raise FetchError(f"{base_url} sent resumption token {page.resumption_token!r} twice")
        params = _resume_params(page.resumption_token)


def _first_params(
    metadata_prefix: str, set_spec: str | None, from_date: date | None, until_date: date | None
) -> dict[str, str | int]:
    params: dict[str, str | int] = {"verb": "ListRecords", "metadataPrefix": metadata_prefix}
    if set_spec:
        params["set"] = set_spec
    if from_date:
        params["from"] = from_date.strftime("%Y-%m-%d")
    if until_date:
        params["until"] = until_date.strftime("%Y-%m-%d")
    return params


def _resume_params(token: str) -> dict[str, str | int]:
    """A resumed request carries the verb and the token only (OAI-PMH 2.0, 3.5)."""
    return {"verb": "ListRecords", "resumptionToken": token}


def _response_date(root: Element) -> datetime | None:
    try:
        return optional_date(find_text(root, f"{OAI}responseDate"))
    except BadRecord:
        return None


def _is_empty_result(root: Element) -> bool:
    """True for noRecordsMatch; raises OaiError for any other error."""
    errors = [(e.get("code") or "unknown", text_of(e)) for e in root.iterfind(f"{OAI}error")]
    for code, text in errors:
        if code != _NO_RECORDS:
            raise OaiError(code, text)
    return bool(errors)


def _container(root: Element) -> Element:
    for verb in ("ListRecords", "GetRecord"):
        container = root.find(f"{OAI}{verb}")
        if container is not None:
            return container
    children = ", ".join(f"<{local_name(child.tag)}>" for child in root)
    raise BadDocument(f"not a ListRecords or GetRecord response (it holds {children})")


def _is_deleted(record: Element) -> bool:
    header = record.find(f"{OAI}header")
    return header is not None and header.get("status") == "deleted"


def _read_token(element: Element | None, page: ListRecordsPage) -> None:
    if element is None:
        return
    page.resumption_token = (element.text or "").strip() or None
    page.complete_list_size = _int_attribute(element, "completeListSize")
    page.cursor = _int_attribute(element, "cursor")


def _int_attribute(element: Element, name: str) -> int | None:
    value = (element.get(name) or "").strip()
    return int(value) if value.isdigit() else None


def _record(record: Element, position: str) -> Item:
    metadata = record.find(f"{OAI}metadata/{META}arXiv")
    header_id = find_text(record, f"{OAI}header/{OAI}identifier")
    if metadata is None:
        return RecordError(_where(position, header_id), "no arXiv metadata (metadataPrefix=arXiv?)")
    raw_id = find_text(metadata, f"{META}id") or header_id
    if raw_id is None:
        return RecordError(position, "record has no <id>")
    try:
        arxiv_id = parse_arxiv_id(raw_id).id
    except InvalidInput as exc:
        return RecordError(_where(position, raw_id), exc.message)
    where = _where(position, arxiv_id)
    try:
        return _paper(metadata, arxiv_id, where)
    except BadRecord as exc:
        return RecordError(where, str(exc))


def _where(position: str, ident: str | None) -> str:
    return f"{position} ({ident})" if ident else position


def _paper(metadata: Element, arxiv_id: str, where: str) -> PaperRecord:
    try:
        categories = arxiv_categories((find_text(metadata, f"{META}categories") or "").split())
    except ValueError as exc:
        raise BadRecord(str(exc)) from None

    def text(name: str) -> str | None:
        return find_text(metadata, f"{META}{name}")

    return PaperRecord(
        arxiv_id=arxiv_id,
        source=FORMAT,
        position=where,
        title=text("title"),
        abstract=text("abstract"),
        authors=[_author(a) for a in metadata.iterfind(f"{META}authors/{META}author")],
        categories=categories,
        primary_category=categories[0] if categories else None,
        published_at=optional_date(text("created")),
        updated_at=optional_date(text("updated")),
        comments=text("comments"),
        journal_ref=text("journal-ref"),
        doi=text("doi"),
        report_no=text("report-no"),
        license=text("license"),
        msc_class=text("msc-class"),
        acm_class=text("acm-class"),
    )


def _author(element: Element) -> Author:
    parts = [find_text(element, f"{META}{name}") for name in ("forenames", "keyname", "suffix")]
    name = " ".join(part for part in parts if part)
    if not name:
        raise BadRecord("an <author> has no keyname")
    affiliations = [text_of(a) for a in element.iterfind(f"{META}affiliation")]
    return Author(name, "; ".join(a for a in affiliations if a) or None)
