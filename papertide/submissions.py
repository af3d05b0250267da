"""Submissions: people put a paper on today's daily list by its arXiv id or URL.

The rules (settings, see docs/moderation.md), each refusal with its own message:

- at most ``submission_daily_limit`` submissions per person per day (RateLimited until
  midnight in the site time zone); pending and rejected ones count too;
- the paper's first version is at most ``submission_max_age_days`` days old (InvalidInput);
- a paper appears on a day's list once (Conflict), and a hidden paper cannot be submitted;
- on Saturdays and Sundays only when ``submission_allow_weekends`` (InvalidInput);
- accounts younger than ``submission_min_account_days`` days submit for a moderator's approval:
  the entry is *pending* and stays off the list until approved (moderators never wait);
- a member of an organization may attach the paper to it (PermissionDenied for anyone else).

A paper the catalog does not have yet is fetched from the arXiv API (``id_list=``) before the
write transaction, and written with the catalog writer in the same transaction as its daily
entry, so a refused submission leaves nothing behind. The rules are checked once before the
fetch (no request to arXiv for a submission that would be refused) and again in the write.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import ColumnElement, Connection, Engine, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from papertide import audit, organizations
from papertide.accounts.users import User
from papertide.cards import EntryStatus
from papertide.catalog.ids import parse_arxiv_id
from papertide.catalog.records import PaperRecord
from papertide.catalog.store import CatalogWriter
from papertide.config import Settings
from papertide.daily import today
from papertide.db.engine import write_transaction
from papertide.db.schema import daily_entries, paper_versions, papers, users
from papertide.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RateLimited
from papertide.ingest import arxiv_atom
from papertide.ingest.polite_http import FetchError, build_client

SOURCE = "submission"
MAX_COMMENT = 1000
FETCH_TIMEOUT = 20.0  # seconds; someone is waiting for the page


@dataclass(frozen=True, slots=True)
class Submission:
    """The outcome of a submission."""

    arxiv_id: str
    title: str
    day: date
    status: EntryStatus
    fetched: bool  # the metadata was fetched from arXiv just now


@dataclass(frozen=True, slots=True)
class SubmissionLine:
    """One submission, as the submit page and the moderation queue show it."""

    entry_id: int
    arxiv_id: str
    title: str
    day: date
    status: EntryStatus
    submitter: str | None
    comment: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class _Paper:
    id: int
    arxiv_id: str
    title: str
    first_version_at: datetime | None
    hidden: bool
    organization_id: int | None


def submit_paper(
    engine: Engine,
    settings: Settings,
    user: User,
    paper: str,
    comment: str | None = None,
    organization_slug: str | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Submission:
    """Submit ``paper`` (an arXiv id or URL) to today's list for ``user``."""
    now = now or datetime.now(UTC)
    arxiv_id = parse_arxiv_id(paper).id
    comment = _clean_comment(comment)
    slug = (organization_slug or "").strip() or None
    with engine.connect() as connection:
        known = _check_rules(connection, settings, user, arxiv_id, slug, now)
    record = None if known is not None else fetch_record(settings, arxiv_id, transport, sleep)
    with write_transaction(engine) as connection:
        if record is not None:
            CatalogWriter(tz=ZoneInfo(settings.timezone), now=now).write(connection, [record])
        return _submit(connection, settings, user, arxiv_id, comment, slug, now, record)


def fetch_record(
    settings: Settings,
    arxiv_id: str,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PaperRecord:
    """The paper's metadata from the arXiv API; NotFound when arXiv does not have it."""
    client = build_client(settings.http_user_agent, timeout=FETCH_TIMEOUT, transport=transport)
    try:
        with client:
            items = arxiv_atom.fetch_ids(
                client,
                settings.arxiv_api_url,
                [arxiv_id],
                interval=settings.arxiv_request_interval,
                sleep=sleep,
                max_retries=1,
            )
    except FetchError as exc:
        raise FetchError(f"could not look up {arxiv_id} on arXiv: {exc.message}") from exc
    for item in items:
        if isinstance(item, PaperRecord) and item.arxiv_id == arxiv_id:
            return item
    raise NotFound(f"arXiv has no paper {arxiv_id}: check the id")


def _clean_comment(comment: str | None) -> str | None:
    text = (comment or "").strip()
    if len(text) > MAX_COMMENT:
        raise InvalidInput(f"a submission comment has at most {MAX_COMMENT} characters")
    return text or None


def _check_rules(
    connection: Connection,
    settings: Settings,
    user: User,
    arxiv_id: str,
    organization_slug: str | None,
    now: datetime,
) -> _Paper | None:
    """Refuse the submission if a rule forbids it; the paper when the catalog has it."""
    day = today(settings, now)
    if not user.active:
        raise PermissionDenied("a suspended account cannot submit papers")
    if day.weekday() >= 5 and not settings.submission_allow_weekends:
        raise InvalidInput("papers cannot be submitted on weekends here; come back on Monday")
    _check_quota(connection, settings, user, day, now)
    if organization_slug is not None:
        _member_organization(connection, user, organization_slug)
    paper = _load_paper(connection, arxiv_id)
    if paper is not None:
        _check_paper(connection, settings, paper, day, now)
    return paper


def _check_quota(
    connection: Connection, settings: Settings, user: User, day: date, now: datetime
) -> None:
    count = connection.execute(
        select(func.count())
        .select_from(daily_entries)
        .where(daily_entries.c.submitted_by_user_id == user.id, daily_entries.c.day == day)
    ).scalar_one()
    limit = settings.submission_daily_limit
    if count >= limit:
        tz = ZoneInfo(settings.timezone)
        midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        wait = max(1, int((midnight - now).total_seconds()))
        raise RateLimited(
            f"you have made {count} submissions today, the most allowed per day ({limit}); "
            "submit again tomorrow",
            wait,
        )


def _member_organization(
    connection: Connection, user: User, slug: str
) -> organizations.Organization:
    organization = organizations.organization_by_slug(connection, slug)
    if organizations.member_role(connection, organization, user) is None:
        raise PermissionDenied(
            f"only members of {organization.name} may attach papers to it; you are not one"
        )
    return organization


def _load_paper(connection: Connection, arxiv_id: str) -> _Paper | None:
    row = connection.execute(
        select(
            papers.c.id,
            papers.c.arxiv_id,
            papers.c.title,
            papers.c.published_at,
            papers.c.hidden_at,
            papers.c.organization_id,
        ).where(papers.c.arxiv_id == arxiv_id)
    ).first()
    if row is None:
        return None
    first_version = connection.execute(
        select(paper_versions.c.submitted_at).where(
            paper_versions.c.paper_id == row.id, paper_versions.c.version == 1
        )
    ).scalar()
    return _Paper(
        row.id,
        row.arxiv_id,
        row.title,
        first_version or row.published_at,
        row.hidden_at is not None,
        row.organization_id,
    )


def _check_paper(
    connection: Connection, settings: Settings, paper: _Paper, day: date, now: datetime
) -> None:
    if paper.hidden:
        raise Conflict(f"{paper.arxiv_id} was hidden by the moderators and cannot be submitted")
    existing = connection.execute(
        select(daily_entries.c.status).where(
            daily_entries.c.paper_id == paper.id, daily_entries.c.day == day
        )
    ).scalar()
    if existing == EntryStatus.PENDING:
        raise Conflict(f"{paper.arxiv_id} was already submitted today and awaits a moderator")
    if existing is not None:
        raise Conflict(f"{paper.arxiv_id} is already on today's list ({day.isoformat()})")
    max_days = settings.submission_max_age_days
    first = paper.first_version_at
    if first is not None and now - first > timedelta(days=max_days):
        raise InvalidInput(
            f"{paper.arxiv_id} was first submitted to arXiv on {first:%Y-%m-%d}, more than "
            f"{max_days} days ago; only papers from the last {max_days} days can be submitted"
        )


def _needs_approval(settings: Settings, user: User, now: datetime) -> bool:
    days = settings.submission_min_account_days
    young = now - user.created_at < timedelta(days=days)
    return days > 0 and young and not user.can_moderate


def _submit(
    connection: Connection,
    settings: Settings,
    user: User,
    arxiv_id: str,
    comment: str | None,
    organization_slug: str | None,
    now: datetime,
    record: PaperRecord | None,
) -> Submission:
    """The write: rules again (the state may have changed since the first check), the entry,
    the organization."""
    paper = _check_rules(connection, settings, user, arxiv_id, organization_slug, now)
    if paper is None:  # the fetched record was written just before; cannot be missing
        raise NotFound(f"no paper {arxiv_id} in this catalog")
    day = today(settings, now)
    status = EntryStatus.PENDING if _needs_approval(settings, user, now) else EntryStatus.PUBLISHED
    if organization_slug is not None:
        organization = _member_organization(connection, user, organization_slug)
        if paper.organization_id not in (None, organization.id):
            raise Conflict(f"{arxiv_id} already belongs to another organization")
        organizations.attach_paper(connection, organization, paper.id)
    values = {
        "paper_id": paper.id,
        "day": day,
        "position": None,
        "source": SOURCE,
        "submitter_name": user.username,
        "comment": comment,
        "created_at": now,
        "submitted_by_user_id": user.id,
        "status": status.value,
    }
    try:
        with connection.begin_nested():
            connection.execute(insert(daily_entries).values(values))
    except IntegrityError:
        raise Conflict(f"{arxiv_id} is already on today's list ({day.isoformat()})") from None
    return Submission(paper.arxiv_id, paper.title, day, status, fetched=record is not None)


def submissions_of(
    connection: Connection, settings: Settings, user: User, now: datetime | None = None
) -> list[SubmissionLine]:
    """What ``user`` submitted today, newest first."""
    day = today(settings, now)
    return _lines(
        connection,
        and_(daily_entries.c.submitted_by_user_id == user.id, daily_entries.c.day == day),
        newest_first=True,
    )


def profile_submissions(
    connection: Connection, user: User, *, everything: bool, limit: int = 100
) -> list[SubmissionLine]:
    """What ``user`` has submitted, newest first: only what the lists show, unless
    ``everything`` (the user themselves, or a moderator) also pending and rejected ones."""
    condition = daily_entries.c.submitted_by_user_id == user.id
    if not everything:
        condition = and_(
            condition,
            daily_entries.c.status == EntryStatus.PUBLISHED.value,
            papers.c.hidden_at.is_(None),
        )
    return _lines(connection, condition, newest_first=True, limit=limit)


def pending_submissions(connection: Connection, limit: int = 200) -> list[SubmissionLine]:
    """Submissions waiting for a moderator, oldest first."""
    return _lines(connection, daily_entries.c.status == EntryStatus.PENDING.value, limit=limit)


def _lines(
    connection: Connection,
    condition: ColumnElement[bool],
    *,
    newest_first: bool = False,
    limit: int = 200,
) -> list[SubmissionLine]:
    order = daily_entries.c.created_at.desc() if newest_first else daily_entries.c.created_at
    rows = connection.execute(
        select(
            daily_entries.c.id,
            papers.c.arxiv_id,
            papers.c.title,
            daily_entries.c.day,
            daily_entries.c.status,
            users.c.username,
            daily_entries.c.comment,
            daily_entries.c.created_at,
        )
        .join(papers, papers.c.id == daily_entries.c.paper_id)
        .outerjoin(users, users.c.id == daily_entries.c.submitted_by_user_id)
        .where(condition)
        .order_by(order, daily_entries.c.id)
        .limit(limit)
    )
    return [
        SubmissionLine(r.id, r.arxiv_id, r.title, r.day, EntryStatus(r.status), *r[5:])
        for r in rows
    ]


def decide_submission(
    connection: Connection,
    settings: Settings,
    moderator: User,
    entry_id: int,
    approve: bool,
    now: datetime | None = None,
) -> SubmissionLine:
    """Approve a pending submission (it joins today's list) or reject it; audited."""
    if not moderator.can_moderate:
        raise PermissionDenied("only moderators may decide submissions")
    now = now or datetime.now(UTC)
    found = _lines(connection, daily_entries.c.id == entry_id, limit=1)
    if not found:
        raise NotFound(f"no submission {entry_id}")
    line = found[0]
    if line.status is not EntryStatus.PENDING:
        raise Conflict(f"submission {entry_id} ({line.arxiv_id}) was already {line.status.value}")
    values: dict[str, object] = {"status": EntryStatus.REJECTED.value}
    if approve:
        # Approved later than submitted: it goes on the list of the day it is approved.
        values = {"status": EntryStatus.PUBLISHED.value, "day": today(settings, now)}
    try:
        with connection.begin_nested():
            connection.execute(
                update(daily_entries).where(daily_entries.c.id == entry_id).values(values)
            )
    except IntegrityError:
        raise Conflict(f"{line.arxiv_id} is already on today's list") from None
    action = "submission.approve" if approve else "submission.reject"
    details = {"entry": entry_id, "submitter": line.submitter}
    audit.record(connection, moderator, action, f"paper:{line.arxiv_id}", details)
    return line
