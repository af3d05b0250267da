"""Saving papers into named folders; public folders are collections others can follow.

Every user has a default folder, "Saved" (``saved``), made on first save. A paper may sit in
several folders; saves (in any folder) are positives for the user's feed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from papertide.accounts.users import User
from papertide.community.papers import paper_row
from papertide.db.schema import folder_follows, folders, papers, saved_papers, users
from papertide.errors import Conflict, InvalidInput, NotFound, PermissionDenied

DEFAULT_SLUG = "saved"
DEFAULT_NAME = "Saved"
MAX_FOLDERS = 100
MAX_NAME = 80
_SLUG_RE = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class Folder:
    id: int
    owner: str  # username
    slug: str
    name: str
    public: bool
    papers: int


def slug_for(name: str) -> str:
    """``"Diffusion LMs!"`` -> ``diffusion-lms``; InvalidInput when nothing is left."""
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > MAX_NAME:
        raise InvalidInput(f"a folder name needs 1 to {MAX_NAME} characters, not {len(cleaned)}")
    slug = _SLUG_RE.sub("-", cleaned.lower()).strip("-")
    if not slug:
        raise InvalidInput(f"folder name {cleaned!r} needs at least one letter or digit")
    return slug[:MAX_NAME]


def _insert(connection: Connection) -> type[sqlite.Insert] | type[postgresql.Insert]:
    return postgresql.Insert if connection.dialect.name == "postgresql" else sqlite.Insert


def create_folder(connection: Connection, user: User, name: str, *, public: bool = False) -> str:
    """Make a folder; its slug. Conflict when the user has one of that name."""
    slug = slug_for(name)
    count = connection.execute(
        select(func.count()).select_from(folders).where(folders.c.user_id == user.id)
    ).scalar_one()
    if count >= MAX_FOLDERS:
        raise InvalidInput(f"at most {MAX_FOLDERS} folders per account")
    taken = connection.execute(
        select(folders.c.id).where(folders.c.user_id == user.id, folders.c.slug == slug)
    ).first()
    if taken is not None:
        raise Conflict(f"you already have a folder {slug!r}")
    inserted = connection.execute(
        _insert(connection)(folders)
        .values(
            user_id=user.id,
            slug=slug,
            name=" ".join(name.split()),
            public=public,
            created_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing()
    )
    if inserted.rowcount == 0:
        raise Conflict(f"you already have a folder {slug!r}")
    return slug


def _folder_id(connection: Connection, user: User, slug: str, *, create: bool = False) -> int:
    found = connection.execute(
        select(folders.c.id).where(folders.c.user_id == user.id, folders.c.slug == slug)
    ).scalar()
    if found is not None:
        return int(found)
    if create and slug == DEFAULT_SLUG:
        create_folder(connection, user, DEFAULT_NAME)
        return _folder_id(connection, user, slug)
    raise NotFound(f"you have no folder {slug!r}")


def save_paper(
    connection: Connection, user: User, arxiv_id: str, folder: str = DEFAULT_SLUG
) -> None:
    """Put the paper in ``folder`` (idempotent)."""
    paper = paper_row(connection, arxiv_id)
    folder_id = _folder_id(connection, user, folder, create=True)
    connection.execute(
        _insert(connection)(saved_papers)
        .values(folder_id=folder_id, paper_id=paper.id, user_id=user.id, saved_at=datetime.now(UTC))
        .on_conflict_do_nothing()
    )


def unsave_paper(
    connection: Connection, user: User, arxiv_id: str, folder: str | None = None
) -> None:
    """Take the paper out of ``folder``, or out of every folder (idempotent)."""
    paper = paper_row(connection, arxiv_id)
    condition = (saved_papers.c.user_id == user.id) & (saved_papers.c.paper_id == paper.id)
    if folder is not None:
        condition = condition & (saved_papers.c.folder_id == _folder_id(connection, user, folder))
    connection.execute(delete(saved_papers).where(condition))


def set_public(connection: Connection, user: User, slug: str, public: bool) -> None:
    folder_id = _folder_id(connection, user, slug)
    connection.execute(update(folders).where(folders.c.id == folder_id).values(public=public))


def delete_folder(connection: Connection, user: User, slug: str) -> None:
    connection.execute(delete(folders).where(folders.c.id == _folder_id(connection, user, slug)))


def _folder_select() -> Select[Any]:
    count = (
        select(func.count())
        .where(saved_papers.c.folder_id == folders.c.id)
        .scalar_subquery()
        .label("papers")
    )
    return select(
        folders.c.id, users.c.username, folders.c.slug, folders.c.name, folders.c.public, count
    ).join(users, users.c.id == folders.c.user_id)


def user_folders(connection: Connection, owner: User) -> list[Folder]:
    rows = connection.execute(
        _folder_select().where(folders.c.user_id == owner.id).order_by(folders.c.created_at)
    )
    return [Folder(*row) for row in rows]


def public_folder(connection: Connection, username: str, slug: str, viewer: User | None) -> Folder:
    """A folder as ``viewer`` may see it: public, or their own; else NotFound (worded alike)."""
    row = connection.execute(
        _folder_select().where(
            func.lower(users.c.username) == username.lower(), folders.c.slug == slug
        )
    ).first()
    if row is None or not (row.public or (viewer is not None and viewer.username == row.username)):
        raise NotFound(f"no folder {username}/{slug}")
    return Folder(*row)


def folder_paper_ids(connection: Connection, folder: Folder) -> list[int]:
    """The folder's papers, most recently saved first."""
    return list(
        connection.execute(
            select(saved_papers.c.paper_id)
            .where(saved_papers.c.folder_id == folder.id)
            .order_by(saved_papers.c.saved_at.desc())
        ).scalars()
    )


def follow(connection: Connection, user: User, username: str, slug: str) -> None:
    folder = public_folder(connection, username, slug, None)
    if folder.owner == user.username:
        raise PermissionDenied("you cannot follow your own folder")
    connection.execute(
        _insert(connection)(folder_follows)
        .values(user_id=user.id, folder_id=folder.id, created_at=datetime.now(UTC))
        .on_conflict_do_nothing()
    )


def unfollow(connection: Connection, user: User, username: str, slug: str) -> None:
    folder = public_folder(connection, username, slug, user)
    connection.execute(
        delete(folder_follows).where(
            folder_follows.c.user_id == user.id, folder_follows.c.folder_id == folder.id
        )
    )


def saved_arxiv_ids(connection: Connection, user: User | None, arxiv_ids: list[str]) -> set[str]:
    """Which of ``arxiv_ids`` ``user`` has saved in any folder."""
    if user is None or not arxiv_ids:
        return set()
    return set(
        connection.execute(
            select(papers.c.arxiv_id)
            .join(saved_papers, saved_papers.c.paper_id == papers.c.id)
            .where(saved_papers.c.user_id == user.id, papers.c.arxiv_id.in_(arxiv_ids))
        ).scalars()
    )
