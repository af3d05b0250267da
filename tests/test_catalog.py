"""The catalog writer: idempotent, versioned merges that never erase or roll back."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from factories import listed, make_record, rows, write_records
from sqlalchemy import Engine

from papertide.catalog.records import Author, OrganizationRef, Version


def paper(engine: Engine, arxiv_id: str) -> dict:  # type: ignore[type-arg]
    with engine.connect() as connection:
        from sqlalchemy import text

        row = (
            connection.execute(text("SELECT * FROM papers WHERE arxiv_id = :a"), {"a": arxiv_id})
            .mappings()
            .one()
        )
    result = dict(row)
    if isinstance(result["field_sources"], str):
        result["field_sources"] = json.loads(result["field_sources"])
    return result


def test_same_input_twice_adds_nothing(engine: Engine) -> None:
    records = [make_record(f"2505.0000{i}", listing=listed(date(2025, 5, 2), i)) for i in range(3)]
    first = write_records(engine, *records)
    assert (first.new, first.updated, first.unchanged, first.listings_added) == (3, 0, 0, 3)
    again = write_records(engine, *records)
    assert (again.new, again.updated, again.unchanged, again.listings_added) == (0, 0, 3, 0)
    assert rows(engine, "SELECT count(*) FROM papers")[0][0] == 3
    assert rows(engine, "SELECT count(*) FROM paper_authors")[0][0] == 6
    assert rows(engine, "SELECT count(*) FROM daily_entries")[0][0] == 3


def test_newer_version_updates_and_records_the_version(engine: Engine) -> None:
    v1_at = datetime(2025, 5, 1, 17, 0, tzinfo=UTC)
    v2_at = datetime(2025, 5, 9, 12, 30, tzinfo=UTC)
    write_records(engine, make_record("2505.01234", title="Old title"))
    result = write_records(
        engine,
        make_record(
            "2505.01234",
            version=2,
            title="New title",
            versions=[Version(1, v1_at), Version(2, v2_at, "120kb")],
        ),
    )
    assert result.updated == 1
    row = paper(engine, "2505.01234")
    assert row["title"] == "New title"
    assert row["latest_version"] == 2
    versions = rows(
        engine,
        "SELECT version, size FROM paper_versions ORDER BY version",
    )
    assert [tuple(v) for v in versions] == [(1, None), (2, "120kb")]
    assert rows(engine, "SELECT count(*) FROM papers")[0][0] == 1


def test_older_version_never_rolls_back_but_fills_gaps(engine: Engine) -> None:
    write_records(engine, make_record("2505.01234", version=3, title="v3 title", doi=None))
    result = write_records(
        engine, make_record("2505.01234", version=1, title="v1 title", doi="10.1/xyz")
    )
    assert result.updated == 1
    row = paper(engine, "2505.01234")
    assert row["title"] == "v3 title"
    assert row["doi"] == "10.1/xyz"
    assert row["latest_version"] == 3


def test_partial_source_keeps_what_others_filled(engine: Engine) -> None:
    write_records(engine, make_record("2505.01234", comments="12 pages"))
    hf_like = make_record(
        "2505.01234",
        source="hf-jsonfeed",
        version=None,
        authors=[],
        categories=[],
        versions=[],
        abstract=None,
        title="A paper about 2505.01234",
        ai_summary="It does things.",
        ai_summary_model="Qwen/Qwen3",
        upvotes=7,
    )
    result = write_records(engine, hf_like)
    assert result.updated == 1
    row = paper(engine, "2505.01234")
    assert row["author_count"] == 2 and row["comments"] == "12 pages"
    assert row["ai_summary"] == "It does things." and row["upvotes"] == 7
    assert row["field_sources"]["ai_summary"] == "hf-jsonfeed"
    assert row["field_sources"]["comments"] == "test"


def test_imported_upvotes_move_the_total_by_the_difference(engine: Engine) -> None:
    write_records(engine, make_record("2505.01234", upvotes=5))
    write_records(engine, make_record("2505.01234", upvotes=12))
    row = paper(engine, "2505.01234")
    assert (row["imported_upvotes"], row["upvotes"]) == (12, 12)


def test_listing_added_once_and_reordered(engine: Engine) -> None:
    day = date(2025, 5, 2)
    write_records(engine, make_record("2505.01234", listing=listed(day, 4)))
    result = write_records(engine, make_record("2505.01234", listing=listed(day, 1)))
    assert result.listings_added == 0
    assert [tuple(r) for r in rows(engine, "SELECT day, position FROM daily_entries")] in (
        [(date(2025, 5, 2), 1)],
        [("2025-05-02", 1)],
    )


def test_organization_created_once(engine: Engine) -> None:
    org = OrganizationRef("zai-org", "Z.ai", "https://example.org/a.png")
    write_records(engine, make_record("2505.00001", organization=org))
    write_records(engine, make_record("2505.00002", organization=org))
    assert [tuple(r) for r in rows(engine, "SELECT slug, name FROM organizations")] == [
        ("zai-org", "Z.ai")
    ]
    assert rows(engine, "SELECT count(DISTINCT organization_id) FROM papers")[0][0] == 1


def test_new_paper_without_title_is_an_error_and_the_rest_is_written(engine: Engine) -> None:
    result = write_records(engine, make_record("2505.00001", title=None), make_record("2505.00002"))
    assert result.new == 1
    assert len(result.errors) == 1
    assert result.errors[0].position == "test:2505.00001"
    assert "no title" in result.errors[0].reason


def test_duplicates_in_one_batch_merge_in_order(engine: Engine) -> None:
    result = write_records(
        engine,
        make_record("2505.01234", title="First"),
        make_record("2505.01234", version=2, title="Second"),
    )
    assert (result.new, result.updated) == (1, 1)
    assert paper(engine, "2505.01234")["title"] == "Second"


def test_authors_keep_order_and_affiliations(engine: Engine) -> None:
    authors = [Author("Zoë Ångström", "KTH"), Author("Ada Lovelace"), Author("Bob")]
    write_records(engine, make_record("2505.01234", authors=authors))
    got = rows(engine, "SELECT position, name, affiliation FROM paper_authors ORDER BY position")
    assert [tuple(r) for r in got] == [
        (0, "Zoë Ångström", "KTH"),
        (1, "Ada Lovelace", None),
        (2, "Bob", None),
    ]
    assert paper(engine, "2505.01234")["authors_text"] == "Zoë Ångström, Ada Lovelace, Bob"


def test_auto_follow_lists_new_recent_papers_in_followed_categories(engine: Engine) -> None:
    now = datetime(2025, 5, 3, 15, 0, tzinfo=UTC)
    recent = [Version(1, now - timedelta(days=1))]
    old = [Version(1, now - timedelta(days=400))]
    result = write_records(
        engine,
        make_record("2505.00001", categories=["cs.CL"], versions=recent),
        make_record("2505.00002", categories=["math.AG"], versions=recent),
        make_record("2505.00003", categories=["cs.CL"], versions=old),
        auto_follow=frozenset({"cs.CL"}),
        now=now,
    )
    assert result.listings_added == 1
    listed_rows = rows(
        engine,
        "SELECT p.arxiv_id, d.source FROM daily_entries d JOIN papers p ON p.id = d.paper_id",
    )
    assert [tuple(r) for r in listed_rows] == [("2505.00001", "auto-follow")]


def test_code_link_extracted_unless_the_source_names_one(engine: Engine) -> None:
    write_records(
        engine,
        make_record("2505.00001", abstract="Code: https://github.com/a/b."),
        make_record(
            "2505.00002",
            abstract="Code: https://github.com/a/b.",
            code_url="https://github.com/official/repo",
        ),
    )
    assert paper(engine, "2505.00001")["code_url"] == "https://github.com/a/b"
    assert paper(engine, "2505.00002")["code_url"] == "https://github.com/official/repo"
    assert paper(engine, "2505.00001")["field_sources"]["code_url"] == "extracted"
