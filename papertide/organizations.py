"""Organizations: the labs and companies papers belong to, their members and their page.

Site administrators create organizations; a site administrator or one of the organization's own
admins adds and removes members and edits its name and description. Members may attach the
papers they submit to the organization (see :mod:`papertide.submissions`). Every change is
recorded in the audit log in the same transaction.

Organizations also arrive with imported data (Hugging Face lists name one per paper); those
start without members until an administrator adds some.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from papertide import audit
from papertide.accounts.users import User, user_by_username
from papertide.cards import CardPage, card_select, check_page, fetch_cards, visible_entry
from papertide.db.schema import daily_entries, organization_members, organizations, papers, users
from papertide.errors import Conflict, InvalidInput, NotFound, PermissionDenied

SLUG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,98}[A-Za-z0-9]|[A-Za-z0-9]")
MAX_NAME = 200
MAX_DESCRIPTION = 2000


class MemberRole(StrEnum):
    MEMBER = "member"
    ADMIN = "admin"  # may add and remove members and edit the organization


@dataclass(frozen=True, slots=True)
class Organization:
    id: int
    slug: str
    name: str
    description: str | None
    avatar_url: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Member:
    username: str
    display_name: str | None
    role: MemberRole
    added_at: datetime


_COLUMNS = (
    organizations.c.id,
    organizations.c.slug,
    organizations.c.name,
    organizations.c.description,
    organizations.c.avatar_url,
    organizations.c.created_at,
)


def _organization(row: Any) -> Organization:
    return Organization(**{column.name: row._mapping[column.name] for column in _COLUMNS})


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(f"an organization's name has 1 to {MAX_NAME} characters")
    return name


def _clean_description(description: str | None) -> str | None:
    text = (description or "").strip()
    if len(text) > MAX_DESCRIPTION:
        raise InvalidInput(f"a description has at most {MAX_DESCRIPTION} characters")
    return text or None


def organization_by_slug(connection: Connection, slug: str) -> Organization:
    row = connection.execute(select(*_COLUMNS).where(organizations.c.slug == slug.strip())).first()
    if row is None:
        raise NotFound(f"no organization {slug!r}")
    return _organization(row)


def list_organizations(connection: Connection) -> list[tuple[Organization, int]]:
    """Every organization with its number of members, by name."""
    count = (
        select(func.count())
        .select_from(organization_members)
        .where(organization_members.c.organization_id == organizations.c.id)
        .scalar_subquery()
    )
    rows = connection.execute(
        select(*_COLUMNS, count.label("members")).order_by(
            func.lower(organizations.c.name), organizations.c.slug
        )
    )
    return [(_organization(row), int(row.members)) for row in rows]


def create_organization(
    connection: Connection,
    actor: User,
    slug: str,
    name: str,
    description: str | None = None,
    now: datetime | None = None,
) -> Organization:
    """A new organization (site administrators only); Conflict when the slug is taken."""
    if not actor.is_admin:
        raise PermissionDenied("only administrators may create organizations")
    slug = slug.strip()
    if not SLUG_RE.fullmatch(slug):
        raise InvalidInput(
            f"{slug!r} is not a valid short name: 1 to 100 letters, digits, '.', '-' or '_', "
            "starting and ending with a letter or digit"
        )
    values = {
        "slug": slug,
        "name": _clean_name(name),
        "description": _clean_description(description),
        "created_at": now or datetime.now(UTC),
    }
    try:
        with connection.begin_nested():
            connection.execute(insert(organizations).values(values))
    except IntegrityError:
        raise Conflict(f"an organization with the short name {slug!r} already exists") from None
    audit.record(connection, actor, "org.create", f"org:{slug}", {"name": values["name"]})
    return organization_by_slug(connection, slug)


def member_role(
    connection: Connection, organization: Organization, user: User
) -> MemberRole | None:
    role = connection.execute(
        select(organization_members.c.role).where(
            organization_members.c.organization_id == organization.id,
            organization_members.c.user_id == user.id,
        )
    ).scalar()
    return None if role is None else MemberRole(role)


def can_manage(connection: Connection, organization: Organization, user: User | None) -> bool:
    """Site administrators and the organization's own admins manage it."""
    if user is None:
        return False
    return user.is_admin or member_role(connection, organization, user) is MemberRole.ADMIN


def _require_manager(connection: Connection, organization: Organization, actor: User) -> None:
    if not can_manage(connection, organization, actor):
        raise PermissionDenied(
            f"only administrators and admins of {organization.name} may change its members"
        )


def set_member(
    connection: Connection,
    actor: User,
    organization: Organization,
    username: str,
    role: MemberRole | str,
    now: datetime | None = None,
) -> None:
    """Add ``username`` to the organization with ``role``, or change their role."""
    _require_manager(connection, organization, actor)
    try:
        role = MemberRole(role)
    except ValueError:
        raise InvalidInput(f"{role!r} is not a member role (member or admin)") from None
    member = user_by_username(connection, username)
    current = member_role(connection, organization, member)
    if current is role:
        raise Conflict(f"{member.username} already is {role.value} of {organization.name}")
    if current is None:
        connection.execute(
            insert(organization_members).values(
                organization_id=organization.id,
                user_id=member.id,
                role=role.value,
                added_at=now or datetime.now(UTC),
            )
        )
        action = "org.member.add"
    else:
        connection.execute(
            update(organization_members)
            .where(
                organization_members.c.organization_id == organization.id,
                organization_members.c.user_id == member.id,
            )
            .values(role=role.value)
        )
        action = "org.member.role"
    details = {"user": member.username, "role": role.value}
    audit.record(connection, actor, action, f"org:{organization.slug}", details)


def remove_member(
    connection: Connection, actor: User, organization: Organization, username: str
) -> None:
    _require_manager(connection, organization, actor)
    member = user_by_username(connection, username)
    removed = connection.execute(
        delete(organization_members).where(
            organization_members.c.organization_id == organization.id,
            organization_members.c.user_id == member.id,
        )
    )
    if removed.rowcount == 0:
        raise NotFound(f"{member.username} is not a member of {organization.name}")
    audit.record(
        connection,
        actor,
        "org.member.remove",
        f"org:{organization.slug}",
        {"user": member.username},
    )


def update_profile(
    connection: Connection,
    actor: User,
    organization: Organization,
    name: str,
    description: str | None,
) -> None:
    """Change the name and description shown on the organization's page."""
    _require_manager(connection, organization, actor)
    values = {"name": _clean_name(name), "description": _clean_description(description)}
    connection.execute(
        update(organizations).where(organizations.c.id == organization.id).values(values)
    )
    audit.record(connection, actor, "org.edit", f"org:{organization.slug}", values)


def members(connection: Connection, organization: Organization) -> list[Member]:
    """Admins first, then members, each by username."""
    rows = connection.execute(
        select(
            users.c.username,
            users.c.display_name,
            organization_members.c.role,
            organization_members.c.added_at,
        )
        .join(users, users.c.id == organization_members.c.user_id)
        .where(organization_members.c.organization_id == organization.id)
        .order_by(organization_members.c.role, users.c.username_key)
    )
    return [Member(r.username, r.display_name, MemberRole(r.role), r.added_at) for r in rows]


def user_organizations(connection: Connection, user: User) -> list[Organization]:
    """The organizations ``user`` belongs to, by name (the submit form offers these)."""
    rows = connection.execute(
        select(*_COLUMNS)
        .join(organization_members, organization_members.c.organization_id == organizations.c.id)
        .where(organization_members.c.user_id == user.id)
        .order_by(func.lower(organizations.c.name))
    )
    return [_organization(row) for row in rows]


def organization_papers(
    connection: Connection, organization: Organization, page: int = 1, page_size: int = 50
) -> CardPage:
    """The organization's listed papers, each once (on its latest list day), newest first."""
    offset = check_page(page, page_size)
    latest = (
        select(daily_entries.c.paper_id, func.max(daily_entries.c.day).label("day"))
        .join(papers, papers.c.id == daily_entries.c.paper_id)
        .where(papers.c.organization_id == organization.id, visible_entry())
        .group_by(daily_entries.c.paper_id)
        .subquery()
    )
    total = connection.execute(select(func.count()).select_from(latest)).scalar_one()
    if offset >= total:
        return CardPage([], total)
    statement = (
        card_select()
        .select_from(
            latest.join(
                daily_entries,
                and_(
                    daily_entries.c.paper_id == latest.c.paper_id,
                    daily_entries.c.day == latest.c.day,
                ),
            )
            .join(papers, papers.c.id == daily_entries.c.paper_id)
            .join(organizations, organizations.c.id == papers.c.organization_id)
        )
        .order_by(daily_entries.c.day.desc(), papers.c.upvotes.desc(), papers.c.arxiv_id)
        .limit(page_size)
        .offset(offset)
    )
    return CardPage(fetch_cards(connection, statement), total)


def attach_paper(connection: Connection, organization: Organization, paper_id: int) -> None:
    """Make ``organization`` the paper's organization (the submitter's membership is checked
    by the caller)."""
    connection.execute(
        update(papers).where(papers.c.id == paper_id).values(organization_id=organization.id)
    )
