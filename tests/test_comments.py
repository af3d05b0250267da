"""Comments: markdown subset, sanitizing (XSS payloads inert), math kept for KaTeX, mentions,
threads, the edit window, deletion by author / moderator / others, limits, and the HTTP routes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from factories import listed, make_record, rows, write_records
from fastapi import FastAPI
from people import SECRET, add_user, client_as
from sqlalchemy import Engine, event

from papertide import audit
from papertide.accounts.users import Role, User
from papertide.community import comments
from papertide.community.markdown import (
    ALLOWED_TAGS,
    mentioned_names,
    render_markdown,
    sanitize,
)
from papertide.community.paper_view import paper_community
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.errors import InvalidInput, NotFound, PermissionDenied
from papertide.web.app import create_app

DAY = date(2025, 5, 1)
T0 = datetime(2025, 5, 1, 12, tzinfo=UTC)
KNOWN = {"ada": "Ada", "bob": "bob"}


def known(names: set[str]) -> dict[str, str]:
    return {name: KNOWN[name] for name in names if name in KNOWN}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


# --- markdown --------------------------------------------------------------------------------


def test_markdown_subset() -> None:
    html = render_markdown(
        "# Title\n\n**bold** _it_ ~~gone~~ `code` [link](https://example.org/a?b=1&c=2)\n"
        "next line\n\n> quoted\n\n- one\n- two\n\n1. first\n\n```\nx < y\n```\n\n"
        "| a | b |\n|---|--:|\n| 1 | 2 |\n\n<https://auto.example.org>"
    )
    assert "<h3>Title</h3>" in html  # headings sit under the page's own
    assert "<strong>bold</strong> <em>it</em> <s>gone</s> <code>code</code>" in html
    assert (
        '<a href="https://example.org/a?b=1&amp;c=2" rel="nofollow noopener ugc">link</a><br>'
        in html
    )
    assert "<blockquote>" in html and "<ul>" in html and "<ol>" in html
    assert "<pre><code>x &lt; y\n</code></pre>" in html
    assert '<td style="text-align:right">2</td>' in html
    assert '<a href="https://auto.example.org" rel="nofollow noopener ugc">' in html


def test_images_become_links() -> None:
    html = render_markdown("![a chart](https://example.org/c.png)")
    assert "<img" not in html
    assert '<a href="https://example.org/c.png" rel="nofollow noopener ugc">a chart</a>' in html


XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](java\tscript:alert(1))",
    "<javascript:alert(1)>",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<p onmouseover="alert(1)">hover</p>',
    "<svg onload=alert(1)>",
    '<iframe src="https://evil.example.org"></iframe>',
    "<style>body{display:none}</style>",
    '[x](https://a.example.org "t\\" onmouseover=\\"alert(1)")',
    "$</span><script>alert(1)</script>$",
    "$$\n</div><img src=x onerror=alert(1)>\n$$",
    '<div class="math" onclick="alert(1)">x</div>',
    "`<script>alert(1)</script>`",
]


@pytest.mark.parametrize("payload", XSS)
def test_xss_payloads_are_inert(payload: str) -> None:
    html = render_markdown(payload, known)
    for tag, attrs in tags_of(html):
        assert tag in ALLOWED_TAGS, html
        assert not any(name.startswith("on") for name in attrs), html
        href = attrs.get("href")
        assert href is None or href.startswith(("https://", "http://", "mailto:", "/users/")), html
    assert "<script" not in html and "<img" not in html


@pytest.mark.parametrize(
    ("dirty", "clean"),
    [
        ("<script>alert(1)</script>ok", "ok"),
        (
            '<a href="javascript:alert(1)" onclick="x">y</a>',
            '<a rel="nofollow noopener ugc">y</a>',
        ),
        ('<img src="x" onerror="alert(1)">', ""),
        (
            '<span class="math evil" style="color:red" id="x">$x$</span>',
            '<span class="math">$x$</span>',
        ),
        ('<a href="/logout">x</a>', '<a rel="nofollow noopener ugc">x</a>'),
        ('<a href="//evil.example.org">x</a>', '<a rel="nofollow noopener ugc">x</a>'),
        (
            '<a href="/users/ada" rel="me">x</a>',
            '<a href="/users/ada" rel="nofollow noopener ugc">x</a>',
        ),
        ("<b>raw</b><i>html</i>", "rawhtml"),
    ],
)
def test_sanitizer_allow_list(dirty: str, clean: str) -> None:
    assert sanitize(dirty) == clean


def test_math_is_kept_for_katex() -> None:
    html = render_markdown(
        "Let $a_1 * b_2 < c$ and $$x^*$$, costs $5 and $10.\n\n$$\n\\sum_i a_i\n$$"
    )
    assert '<span class="math">$a_1 * b_2 &lt; c$</span>' in html  # no emphasis inside math
    assert '<span class="math">$$x^*$$</span>' in html
    assert "costs $5 and $10." in html  # prices are not math
    assert '<div class="math">$$\\sum_i a_i$$</div>' in html


def test_mentions_link_existing_users_only() -> None:
    html = render_markdown(
        "Thanks @ada and @BOB, not @carol; mail ada@example.org; `@ada`; [@bob](https://x.org)",
        known,
    )
    assert '<a href="/users/Ada" class="mention" rel="nofollow noopener ugc">@ada</a>' in html
    assert '<a href="/users/bob" class="mention" rel="nofollow noopener ugc">@BOB</a>' in html
    assert "not @carol;" in html and "mail ada@example.org;" in html
    assert "<code>@ada</code>" in html
    assert '<a href="https://x.org" rel="nofollow noopener ugc">@bob</a>' in html
    assert mentioned_names("hi @Ada, `@code` and [@x](https://x.org)") == {"ada"}


# --- the domain ------------------------------------------------------------------------------


@pytest.fixture
def papers(engine: Engine) -> None:
    write_records(
        engine,
        make_record("2505.00001", listing=listed(DAY, 0)),
        make_record("2505.00002", listing=listed(DAY, 1)),
    )


@pytest.fixture
def people(engine: Engine) -> dict[str, User]:
    return {
        "ada": add_user(engine, "Ada"),
        "bob": add_user(engine, "bob"),
        "mod": add_user(engine, "mod", Role.MODERATOR),
    }


def post(
    engine: Engine, user: User, body: str, parent: int | None = None, **kw: Any
) -> comments.Comment:
    with write_transaction(engine) as connection:
        return comments.post_comment(
            connection, user, kw.pop("arxiv_id", "2505.00001"), body, parent, **kw
        )


def thread_of(
    engine: Engine, viewer: User | None = None, now: datetime | None = None
) -> comments.Thread:
    with engine.connect() as connection:
        return comments.thread(connection, "2505.00001", viewer, 15, now)


@pytest.mark.usefixtures("papers")
def test_post_renders_markdown_and_mentions(engine: Engine, people: dict[str, User]) -> None:
    comment = post(engine, people["bob"], "  **Nice** result, @ada: $O(n)$?  ", now=T0)
    assert comment.body_markdown == "**Nice** result, @ada: $O(n)$?"
    assert comment.body_html == (
        '<p><strong>Nice</strong> result, <a href="/users/Ada" class="mention" '
        'rel="nofollow noopener ugc">@ada</a>: <span class="math">$O(n)$</span>?</p>\n'
    )
    assert (comment.author, comment.arxiv_id, comment.created_at) == ("bob", "2505.00001", T0)


@pytest.mark.usefixtures("papers")
def test_replies_thread_under_their_parent(engine: Engine, people: dict[str, User]) -> None:
    first = post(engine, people["ada"], "first", now=T0)
    second = post(engine, people["bob"], "second", now=T0 + timedelta(minutes=1))
    reply = post(engine, people["bob"], "reply", first.id, now=T0 + timedelta(minutes=2))
    thread = thread_of(engine, now=T0 + timedelta(hours=3))
    assert [n.comment.id for n in thread.roots] == [first.id, second.id]
    assert [n.comment.id for n in thread.roots[0].replies] == [reply.id]
    assert thread.roots[0].replies[0].depth == 1 and thread.count == 3
    assert thread.roots[0].ago == "3 hours ago"


@pytest.mark.usefixtures("papers")
def test_replies_must_be_on_the_same_paper_and_parent_alive(
    engine: Engine, people: dict[str, User]
) -> None:
    other = post(engine, people["ada"], "elsewhere", arxiv_id="2505.00002")
    with pytest.raises(NotFound, match=f"no comment {other.id} on paper 2505.00001"):
        post(engine, people["bob"], "reply", other.id)
    with pytest.raises(NotFound):
        post(engine, people["bob"], "reply", 999_999)
    with write_transaction(engine) as connection:
        comments.delete_comment(connection, people["ada"], other.id)
    with pytest.raises(InvalidInput, match="deleted"):
        post(engine, people["bob"], "reply", other.id, arxiv_id="2505.00002")


@pytest.mark.usefixtures("papers")
def test_deep_replies_attach_at_the_deepest_shown_level(
    engine: Engine, people: dict[str, User]
) -> None:
    parent: int | None = None
    chain = []
    for n in range(comments.MAX_DEPTH + 3):
        author = people["ada"] if n % 2 == 0 else people["bob"]
        parent = post(engine, author, f"level {n}", parent, now=T0 + timedelta(seconds=n)).id
        chain.append(parent)
    node = thread_of(engine).roots[0]
    for _ in range(comments.MAX_DEPTH - 1):
        node = node.replies[0]
    deepest = node.replies  # all shown at MAX_DEPTH, in order
    assert [n.comment.id for n in deepest] == chain[comments.MAX_DEPTH :]
    assert {n.depth for n in deepest} == {comments.MAX_DEPTH}
    assert [n.reply_to for n in deepest] == [None, "Ada", "bob"]


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


@pytest.mark.usefixtures("papers")
def test_a_thread_costs_one_query(engine: Engine, people: dict[str, User]) -> None:
    top = [post(engine, people["ada"], f"top {n}") for n in range(5)]
    for parent in top:
        post(engine, people["bob"], "reply", parent.id)
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
        with counted(engine) as statements:
            shown = paper_community(connection, people["ada"], "2505.00001", 15)
    assert shown.thread.count == 10
    assert len([s for s in statements if "comments" in s]) == 1
    assert len(statements) == 2  # the viewer's vote, the thread


@pytest.mark.usefixtures("papers")
def test_the_author_edits_within_the_window(engine: Engine, people: dict[str, User]) -> None:
    comment = post(engine, people["ada"], "frist", now=T0)
    assert thread_of(engine, people["ada"], T0 + timedelta(minutes=14)).roots[0].can_edit
    with write_transaction(engine) as connection:
        edited = comments.edit_comment(
            connection, people["ada"], comment.id, "*first*", 15, now=T0 + timedelta(minutes=14)
        )
    assert edited.body_html == "<p><em>first</em></p>\n" and edited.edited_at is not None
    late = T0 + timedelta(minutes=16)
    assert not thread_of(engine, people["ada"], late).roots[0].can_edit
    with (
        write_transaction(engine) as connection,
        pytest.raises(PermissionDenied, match="15 minutes after posting"),
    ):
        comments.edit_comment(connection, people["ada"], comment.id, "again", 15, now=late)


@pytest.mark.usefixtures("papers")
@pytest.mark.parametrize("who", ["bob", "mod"])
def test_others_cannot_edit_and_get_not_found(
    engine: Engine, people: dict[str, User], who: str
) -> None:
    comment = post(engine, people["ada"], "mine")
    with write_transaction(engine) as connection, pytest.raises(NotFound):
        comments.edit_comment(connection, people[who], comment.id, "theirs", 15)
    assert not thread_of(engine, people[who]).roots[0].can_edit


@pytest.mark.usefixtures("papers")
def test_author_deletes_softly_and_replies_keep_their_place(
    engine: Engine, people: dict[str, User]
) -> None:
    parent = post(engine, people["ada"], "parent")
    post(engine, people["bob"], "reply", parent.id)
    leaf = post(engine, people["ada"], "leaf")
    with write_transaction(engine) as connection:
        deleted = comments.delete_comment(connection, people["ada"], parent.id)
        comments.delete_comment(connection, people["ada"], leaf.id)
        again = comments.delete_comment(connection, people["ada"], leaf.id)  # idempotent
    assert deleted.deleted and deleted.html == "" and again.deleted
    thread = thread_of(engine)
    assert [n.comment.id for n in thread.roots] == [parent.id]  # the deleted leaf is gone
    assert thread.roots[0].comment.deleted and thread.roots[0].replies[0].comment.body_markdown
    assert thread.count == 1
    assert rows(engine, "SELECT count(*) FROM audit_log")[0][0] == 0


@pytest.mark.usefixtures("papers")
def test_a_moderator_deletes_and_the_audit_log_says_so(
    engine: Engine, people: dict[str, User]
) -> None:
    comment = post(engine, people["ada"], "spam")
    assert thread_of(engine, people["mod"]).roots[0].can_delete
    with write_transaction(engine) as connection:
        comments.delete_comment(connection, people["mod"], comment.id)
    with engine.connect() as connection:
        entries, total = audit.recent(connection)
    assert total == 1
    [entry] = entries
    assert (entry.action, entry.target) == ("comment.delete", f"comment:{comment.id}")
    assert entry.actor == "mod"
    assert entry.details == {"paper": "2505.00001", "author": "Ada"}


@pytest.mark.usefixtures("papers")
def test_others_cannot_delete_and_get_not_found(engine: Engine, people: dict[str, User]) -> None:
    comment = post(engine, people["ada"], "mine")
    assert not thread_of(engine, people["bob"]).roots[0].can_delete
    with write_transaction(engine) as connection, pytest.raises(NotFound, match="no comment"):
        comments.delete_comment(connection, people["bob"], comment.id)
    assert not thread_of(engine).roots[0].comment.deleted


@pytest.mark.usefixtures("papers")
def test_length_limits(engine: Engine, people: dict[str, User]) -> None:
    post(engine, people["ada"], "x" * comments.MAX_BODY_CHARS)
    with pytest.raises(InvalidInput, match="at most 10,000 characters; this one has 10,001"):
        post(engine, people["ada"], "x" * (comments.MAX_BODY_CHARS + 1))
    with pytest.raises(InvalidInput, match="cannot be empty"):
        post(engine, people["ada"], " \n ")


@pytest.mark.usefixtures("papers")
def test_suspended_users_cannot_comment(engine: Engine, people: dict[str, User]) -> None:
    from dataclasses import replace

    suspended = replace(people["ada"], suspended_at=T0)
    with pytest.raises(PermissionDenied, match="suspended"):
        post(engine, suspended, "hello")


# --- over HTTP -------------------------------------------------------------------------------


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings.replace(secret_key=SECRET))


@pytest.mark.usefixtures("papers")
def test_comment_form_posts_and_the_page_shows_the_thread(
    app: FastAPI, engine: Engine, people: dict[str, User]
) -> None:
    client, token = client_as(app, engine, people["bob"])
    response = client.post(
        "/papers/2505.00001/comments",
        data={"csrf_token": token, "body": "Great, $x^2$! <script>alert(1)</script> @ada"},
    )
    assert response.status_code == 303
    location = re.fullmatch(r"/papers/2505\.00001#comment-(\d+)", response.headers["location"])
    assert location is not None
    first = int(location[1])
    reply = client.post(
        "/papers/2505.00001/comments",
        data={"csrf_token": token, "body": "and a reply", "parent_id": str(first)},
    )
    assert reply.status_code == 303
    page = client.get("/papers/2505.00001").text
    assert '<span class="discussion-count">2</span>' in page
    assert '<span class="math">$x^2$</span>' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert 'class="mention"' in page and 'href="/users/Ada"' in page
    assert f'id="comment-{first}"' in page and "comment-depth-1" in page
    assert page.count("<summary>Edit</summary>") == 2  # bob's own, within the window
    anonymous, _ = client_as(app, engine, None)
    public = anonymous.get("/papers/2505.00001").text
    assert "to comment." in public and "<summary>Reply" not in public
    assert "<summary>Edit</summary>" not in public


@pytest.mark.usefixtures("papers")
def test_comment_json_and_edit_and_delete_routes(
    app: FastAPI, engine: Engine, people: dict[str, User]
) -> None:
    client, token = client_as(app, engine, people["ada"])
    headers = {"accept": "application/json", "x-csrf-token": token}
    created = client.post("/papers/2505.00001/comments", data={"body": "hi"}, headers=headers)
    assert created.status_code == 201
    body = created.json()
    assert body["body_html"] == "<p>hi</p>\n" and body["author"] == "Ada"
    edited = client.post(
        f"/comments/{body['id']}/edit", data={"body": "hi **all**"}, headers=headers
    )
    assert edited.json()["body_html"] == "<p>hi <strong>all</strong></p>\n"
    assert "edited</span>" in client.get("/papers/2505.00001").text
    deleted = client.post(f"/comments/{body['id']}/delete", data={"csrf_token": token})
    assert deleted.status_code == 303
    assert deleted.headers["location"] == f"/papers/2505.00001#comment-{body['id']}"
    assert '<span class="discussion-count">0</span>' in client.get("/papers/2505.00001").text


@pytest.mark.usefixtures("papers")
def test_other_peoples_comments_answer_404(
    app: FastAPI, engine: Engine, people: dict[str, User]
) -> None:
    comment = post(engine, people["ada"], "mine")
    client, token = client_as(app, engine, people["bob"])
    for action, data in (("edit", {"body": "x"}), ("delete", {})):
        response = client.post(
            f"/comments/{comment.id}/{action}", data={**data, "csrf_token": token}
        )
        assert response.status_code == 404, action
        assert f"no comment {comment.id}" in response.text


@pytest.mark.usefixtures("papers")
@pytest.mark.parametrize(
    "path", ["/papers/2505.00001/comments", "/comments/{id}/edit", "/comments/{id}/delete"]
)
def test_comment_routes_need_the_csrf_token(
    app: FastAPI, engine: Engine, people: dict[str, User], path: str
) -> None:
    comment = post(engine, people["ada"], "mine")
    client, _token = client_as(app, engine, people["ada"])
    target = path.format(id=comment.id)
    for data in ({"body": "x"}, {"body": "x", "csrf_token": "forged"}):
        response = client.post(target, data=data)
        assert response.status_code == 403 and "did not come from this site" in response.text
    [row] = rows(engine, "SELECT count(*), max(body_markdown) FROM comments")
    assert tuple(row) == (1, "mine")


@pytest.mark.usefixtures("papers")
def test_bad_comments_answer_400(app: FastAPI, engine: Engine, people: dict[str, User]) -> None:
    client, token = client_as(app, engine, people["ada"])
    too_long = client.post(
        "/papers/2505.00001/comments", data={"csrf_token": token, "body": "x" * 10_001}
    )
    assert too_long.status_code == 400 and "at most 10,000 characters" in too_long.text
    bad_parent = client.post(
        "/papers/2505.00001/comments", data={"csrf_token": token, "body": "x", "parent_id": "abc"}
    )
    assert bad_parent.status_code == 400
    missing = client.post("/papers/2505.09999/comments", data={"csrf_token": token, "body": "x"})
    assert missing.status_code == 404


@pytest.mark.usefixtures("papers")
def test_posting_is_rate_limited(app: FastAPI, engine: Engine, people: dict[str, User]) -> None:
    client, token = client_as(app, engine, people["ada"])
    codes = [
        client.post(
            "/papers/2505.00001/comments", data={"csrf_token": token, "body": f"n{n}"}
        ).status_code
        for n in range(11)
    ]
    assert codes == [303] * 10 + [429]
    refused = client.post("/papers/2505.00001/comments", data={"csrf_token": token, "body": "x"})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert "too many comments (at most 10 in 10 minutes)" in refused.text
    other, other_token = client_as(app, engine, people["bob"])  # per user, not per site
    ok = other.post("/papers/2505.00001/comments", data={"csrf_token": other_token, "body": "x"})
    assert ok.status_code == 303
