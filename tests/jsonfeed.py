"""A small validator of JSON Feed 1.1 (https://jsonfeed.org/version/1.1): the fields the spec
requires (``version``, ``title``, ``items``; per item ``id`` and ``content_html`` or
``content_text``), the types of the optional ones, and that any other key is an extension
(its name starts with an underscore)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

VERSION = "https://jsonfeed.org/version/1.1"
FEED_STRINGS = {"home_page_url", "feed_url", "description", "user_comment", "next_url"}
FEED_STRINGS |= {"icon", "favicon", "language"}
FEED_KEYS = FEED_STRINGS | {"version", "title", "items", "authors", "expired", "hubs"}
ITEM_STRINGS = {"url", "external_url", "title", "content_html", "content_text", "summary"}
ITEM_STRINGS |= {"image", "banner_image", "language", "date_published", "date_modified"}
ITEM_KEYS = ITEM_STRINGS | {"id", "tags", "authors", "attachments"}


def _check_authors(authors: Any) -> None:
    assert isinstance(authors, list) and authors, "authors: a non-empty array"
    for author in authors:
        assert isinstance(author, dict), author
        assert any(isinstance(author.get(k), str) for k in ("name", "url", "avatar")), author


def _check_strings(value: dict[str, Any], keys: set[str]) -> None:
    for key in keys & value.keys():
        assert isinstance(value[key], str), f"{key} must be a string: {value[key]!r}"


def _check_extensions(value: dict[str, Any], known: set[str]) -> None:
    unknown = [key for key in value if key not in known and not key.startswith("_")]
    assert not unknown, f"not JSON Feed fields, nor _extensions: {unknown}"


def check_json_feed(doc: Any) -> None:
    """Raise AssertionError unless ``doc`` is a valid JSON Feed 1.1 document."""
    assert isinstance(doc, dict), "a feed is an object"
    assert doc.get("version") == VERSION, doc.get("version")
    assert isinstance(doc.get("title"), str) and doc["title"], "title: required string"
    assert isinstance(doc.get("items"), list), "items: required array"
    _check_strings(doc, FEED_STRINGS)
    _check_extensions(doc, FEED_KEYS)
    if "authors" in doc:
        _check_authors(doc["authors"])
    ids = []
    for item in doc["items"]:
        assert isinstance(item, dict), item
        assert isinstance(item.get("id"), str) and item["id"], "item id: required string"
        ids.append(item["id"])
        assert any(isinstance(item.get(k), str) for k in ("content_html", "content_text")), (
            "an item needs content_html or content_text"
        )
        _check_strings(item, ITEM_STRINGS)
        _check_extensions(item, ITEM_KEYS)
        for key in ("date_published", "date_modified"):
            if key in item:  # RFC 3339: a full date and time with an offset
                assert datetime.fromisoformat(item[key]).tzinfo is not None, item[key]
        if "authors" in item:
            _check_authors(item["authors"])
        tags = item.get("tags", [])
        assert isinstance(tags, list) and all(isinstance(t, str) for t in tags), tags
    assert len(ids) == len(set(ids)), "item ids must be unique"
