"""Organizations: created by administrators, managed by them and the organization's own admins,
with a page of its papers and members; cards link to it."""

from __future__ import annotations

from datetime import date

import pytest
from factories import listed, make_record, write_records
from fastapi import FastAPI
from sqlalchemy import Engine
from test_moderation import audit_actions, logged_in, make_user, post

from papertide import moderation, organizations
from papertide.accounts.users import Role
from papertide.catalog.records import OrganizationRef
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from papertide.web.app import create_app

DAY = date(2025, 5, 1)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


def test_only_administrators_create_organizations(engine: Engine) -> None:
    ann = make_user(engine, "ann", Role.ADMIN)
    mia = make_user(engine, "mia", Role.MODERATOR)
    ada = make_user(engine, "ada")
    with write_transaction(engine) as connection:
        for someone in (mia, ada):
            with pytest.raises(PermissionDenied, match="only administrators"):
                organizations.create_organization(connection, someone, "lab", "The Lab")
        for slug in ("", "-lab", "a b", "x" * 101):
            with pytest.raises(InvalidInput, match="not a valid short name"):
                organizations.create_organization(connection, ann, slug, "The Lab")
        with pytest.raises(InvalidInput, match="1 to 200 characters"):
            organizations.create_organization(connection, ann, "lab", "   ")
        lab = organizations.create_organization(
            connection, ann, "lab", "  The   Lab ", "  We study tides.  "
        )
        assert (lab.slug, lab.name, lab.description) == ("lab", "The Lab", "We study tides.")
        with pytest.raises(Conflict, match="'lab' already exists"):
            organizations.create_organization(connection, ann, "lab", "Another")
    assert audit_actions(engine) == [("ann", "org.create", "org:lab")]


def test_admins_and_org_admins_manage_members(engine: Engine) -> None:
    ann = make_user(engine, "ann", Role.ADMIN)
    mia = make_user(engine, "mia", Role.MODERATOR)
    ada, bob, cy = (make_user(engine, name) for name in ("ada", "bob", "cyd"))
    with write_transaction(engine) as connection:
        lab = organizations.create_organization(connection, ann, "lab", "The Lab")
        organizations.set_member(connection, ann, lab, "ada", "admin")
        organizations.set_member(connection, ada, lab, "bob", "member")  # an org admin may
        for someone in (bob, mia, cy):  # a plain member, a site moderator, an outsider may not
            with pytest.raises(PermissionDenied, match="only administrators and admins of"):
                organizations.set_member(connection, someone, lab, "cyd", "member")
            with pytest.raises(PermissionDenied):
                organizations.remove_member(connection, someone, lab, "bob")
        with pytest.raises(InvalidInput, match="not a member role"):
            organizations.set_member(connection, ada, lab, "cyd", "owner")
        with pytest.raises(NotFound, match="no user 'nobody'"):
            organizations.set_member(connection, ada, lab, "nobody", "member")
        with pytest.raises(Conflict, match="already is member"):
            organizations.set_member(connection, ada, lab, "bob", "member")
        organizations.set_member(connection, ada, lab, "bob", "admin")
        assert organizations.can_manage(connection, lab, bob)
        organizations.remove_member(connection, bob, lab, "ada")
        with pytest.raises(NotFound, match="ada is not a member of The Lab"):
            organizations.remove_member(connection, ann, lab, "ada")
        members = organizations.members(connection, lab)
        assert [(m.username, m.role.value) for m in members] == [("bob", "admin")]
        assert organizations.user_organizations(connection, bob) == [lab]
        assert organizations.user_organizations(connection, cy) == []
        assert organizations.can_manage(connection, lab, ann)
        assert not organizations.can_manage(connection, lab, None)
    assert audit_actions(engine) == [
        ("ann", "org.create", "org:lab"),
        ("ann", "org.member.add", "org:lab"),
        ("ada", "org.member.add", "org:lab"),
        ("ada", "org.member.role", "org:lab"),
        ("bob", "org.member.remove", "org:lab"),
    ]


def test_org_page_shows_its_papers_and_members(engine: Engine, app: FastAPI) -> None:
    org = OrganizationRef("lab", "The Lab")
    write_records(
        engine,
        make_record("2505.00001", title="First tide", organization=org, listing=listed(DAY, 0)),
        make_record("2505.00002", title="Second tide", organization=org, listing=listed(DAY, 1)),
        make_record("2505.00003", title="Elsewhere", listing=listed(DAY, 2)),
        make_record("2505.00004", title="Never listed", organization=org),
    )
    ann = make_user(engine, "ann", Role.ADMIN)
    make_user(engine, "ada")
    with write_transaction(engine) as connection:
        lab = organizations.organization_by_slug(connection, "lab")  # arrived with the data
        organizations.set_member(connection, ann, lab, "ada", "admin")
        moderation.hide_paper(connection, ann, "2505.00002")
    anonymous = logged_in(app, None)
    page = anonymous.get("/orgs/lab")
    assert page.status_code == 200
    assert "First tide" in page.text and "Second tide" not in page.text  # hidden
    assert "Elsewhere" not in page.text and "Never listed" not in page.text
    assert 'href="/users/ada"' in page.text and "Add or change member" not in page.text
    front = anonymous.get("/papers/date/2025-05-01").text
    assert '<a href="/orgs/lab">The Lab</a>' in front  # cards link to the organization
    assert "The Lab" in anonymous.get("/orgs").text
    assert anonymous.get("/orgs/lab?page=2").status_code == 404

    ada = logged_in(app, "ada")
    assert "Add or change member" in ada.get("/orgs/lab").text
    assert (
        post(ada, "/orgs/lab/edit", {"name": "The Tide Lab", "description": "Waves."}).status_code
        == 303
    )
    edited = anonymous.get("/orgs/lab").text
    assert "The Tide Lab" in edited and "Waves." in edited
    make_user(engine, "bob")
    assert post(ada, "/orgs/lab/members", {"username": "bob", "role": "member"}).status_code == 303
    assert 'href="/users/bob"' in anonymous.get("/orgs/lab").text
    assert post(ada, "/orgs/lab/members/bob/remove").status_code == 303
    assert 'href="/users/bob"' not in anonymous.get("/orgs/lab").text
    assert post(ada, "/orgs/lab/members/bob/remove").status_code == 404


def test_admins_create_organizations_from_the_list_page(engine: Engine, app: FastAPI) -> None:
    make_user(engine, "ann", Role.ADMIN)
    admin = logged_in(app, "ann")
    assert "Create an organization" in admin.get("/orgs").text
    response = post(admin, "/orgs", {"slug": "tide-lab", "name": "Tide Lab"})
    assert response.status_code == 303 and response.headers["location"] == "/orgs/tide-lab"
    assert "No papers listed yet." in admin.get("/orgs/tide-lab").text
    again = post(admin, "/orgs", {"slug": "tide-lab", "name": "Tide Lab"})
    assert again.status_code == 409
    assert "Create an organization" not in logged_in(app, None).get("/orgs").text


def test_organization_papers_page_through_newest_first(engine: Engine) -> None:
    org = OrganizationRef("lab", "The Lab")
    write_records(
        engine,
        *(
            make_record(f"2505.0000{n}", organization=org, listing=listed(date(2025, 5, n), 0))
            for n in range(1, 6)
        ),
    )
    with engine.connect() as connection:
        lab = organizations.organization_by_slug(connection, "lab")
        first = organizations.organization_papers(connection, lab, 1, 2)
        last = organizations.organization_papers(connection, lab, 3, 2)
    assert first.total == 5 and [c.arxiv_id for c in first.cards] == ["2505.00005", "2505.00004"]
    assert [c.arxiv_id for c in last.cards] == ["2505.00001"]
