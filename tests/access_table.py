"""Who may do what: every route of the app, each method, as each role should see it.

tests/test_access.py walks this table: it fails when a route of the app has no case here (so a
new route must be added), when a case names a route the app does not have, and when any role
gets another answer than the one written. docs/security.md reproduces the table.

Roles, in the order of each case's answers:

- ``anonymous``: no session, no token;
- ``user``: ada, an ordinary account that owns the per-user things below (her comments,
  folders, API tokens) and is an admin of the organization ``lab``;
- ``other``: bob, another ordinary account, acting on ada's things;
- ``moderator``: mia; ``admin``: ann.

Answers: ``ok`` (2xx, or a redirect other than to the log-in page), ``login`` (303 to
``/login`` for pages, 401 for JSON and the API), ``403`` (logged in, not allowed), ``404``
(not there, or not for this viewer: another person's things answer 404, never 403, so their
existence does not leak).

Pages are asked for with the role's session cookie, and forms post its CSRF token
(tests/test_access.py checks separately that every form post needs one). ``token`` cases are
the JSON API: the role's ``Authorization: Bearer`` token instead of a cookie, a JSON body.
Placeholders in braces are filled from the test's world, one set per role so that no role's
action changes another's case (each role deletes its own copy of ada's comment, and so on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("anonymous", "user", "other", "moderator", "admin")
OK, LOGIN, DENIED, MISSING, NOT_ALLOWED = "ok", "login", "403", "404", "405"
Answers = tuple[str, str, str, str, str]

PUBLIC: Answers = (OK, OK, OK, OK, OK)
LOGGED_IN: Answers = (LOGIN, OK, OK, OK, OK)
OWNER: Answers = (LOGIN, OK, MISSING, MISSING, MISSING)  # ada's things: hers alone
OWNER_OR_MODERATOR: Answers = (LOGIN, OK, MISSING, OK, OK)
ORG_ADMINS: Answers = (LOGIN, OK, DENIED, DENIED, OK)  # ada administers lab; so do site admins
MODERATORS: Answers = (LOGIN, DENIED, DENIED, OK, OK)
ADMINS: Answers = (LOGIN, DENIED, DENIED, DENIED, OK)
NOWHERE: Answers = (MISSING, MISSING, MISSING, MISSING, MISSING)
SEEN_BY_MODERATORS: Answers = (MISSING, MISSING, MISSING, OK, OK)  # a hidden paper
LOGGED_IN_NOT_FOUND: Answers = (LOGIN, MISSING, MISSING, MISSING, MISSING)
WRONG_METHOD: Answers = (NOT_ALLOWED, NOT_ALLOWED, NOT_ALLOWED, NOT_ALLOWED, NOT_ALLOWED)


@dataclass(frozen=True)
class Case:
    method: str
    route: str  # the route's path as the app declares it
    url: str  # with {placeholders}
    answers: Answers
    body: dict[str, Any] = field(default_factory=dict)  # form fields, or JSON for token cases
    auth: str = "session"  # or "token"
    fresh_session: bool = False  # logs in or out: a spare session, not the role's own


def case(method: str, route: str, answers: Answers, url: str | None = None, **extra: Any) -> Case:
    return Case(method, route, url or route, answers, **extra)


def api(method: str, route: str, answers: Answers, url: str | None = None, **extra: Any) -> Case:
    return Case(method, route, url or route, answers, auth="token", **extra)


V1 = "/api/v1"
PAPER = "/papers/{arxiv_id:path}"
ARXIV = "{arxiv_id:arxiv}"
PASSWORD = "correct horse battery"
MODERATION_USER = "/moderation/users/{username}/"
ORG_MEMBERS = "/orgs/{slug}/members"
FOLDER_ACTION = "/users/{username}/folders/{slug}/{action}"
SUBSCRIPTION = "/subscriptions/{token}"
PREFERENCES = {"frequency": "weekly", "size": "5"}

# fmt: off
CASES: list[Case] = [
    # --- accounts ----------------------------------------------------------------------------
    case("GET", "/favicon.ico", PUBLIC),
    case("GET", "/signup", PUBLIC),
    case("POST", "/signup", PUBLIC, body={"username": "new{n}", "email": "new{n}@example.org",
         "password": PASSWORD}, fresh_session=True),
    case("GET", "/login", PUBLIC),
    case("POST", "/login", PUBLIC, body={"login": "{me}", "password": PASSWORD},
         fresh_session=True),
    case("POST", "/logout", PUBLIC, fresh_session=True),
    case("GET", "/settings", LOGGED_IN),
    case("POST", "/settings/password", LOGGED_IN,
         body={"current_password": PASSWORD, "new_password": PASSWORD}),
    case("POST", "/settings/tokens", LOGGED_IN, body={"name": "laptop"}),
    case("POST", "/settings/tokens/{token_id}/revoke", OWNER,
         "/settings/tokens/{api_token}/revoke"),
    case("GET", "/reset-password", PUBLIC),
    case("POST", "/reset-password", PUBLIC, body={"email": "reset{n}@example.org"}),
    case("GET", "/reset-password/{token}", PUBLIC, "/reset-password/{reset}"),
    case("POST", "/reset-password/{token}", PUBLIC, "/reset-password/{reset}",
         body={"new_password": "another horse battery"}, fresh_session=True),
    # --- lists and paper pages ---------------------------------------------------------------
    case("GET", "/", PUBLIC),
    case("GET", "/papers", PUBLIC),
    case("GET", "/papers/date", PUBLIC, "/papers/date?date={day}"),
    case("GET", "/papers/date/{day}", PUBLIC, "/papers/date/{day}"),
    case("GET", "/papers/week", PUBLIC),
    case("GET", "/papers/month", PUBLIC),
    case("GET", "/papers/week/{week}", PUBLIC, "/papers/week/{week}"),
    case("GET", "/papers/month/{month}", PUBLIC, "/papers/month/{month}"),
    case("GET", "/papers/trending", PUBLIC),
    case("GET", PAPER, PUBLIC, "/papers/{paper}"),
    case("GET", PAPER, SEEN_BY_MODERATORS, "/papers/{hidden_view}"),
    case("GET", PAPER, NOWHERE, "/papers/2505.99998"),
    # --- votes, comments, profiles -----------------------------------------------------------
    case("POST", PAPER + "/vote", LOGGED_IN, "/papers/{paper}/vote"),
    case("POST", PAPER + "/unvote", LOGGED_IN, "/papers/{paper}/unvote"),
    case("POST", PAPER + "/vote", LOGGED_IN_NOT_FOUND, "/papers/{hidden_view}/vote"),
    case("POST", PAPER + "/comments", LOGGED_IN, "/papers/{paper}/comments", body={"body": "Hi"}),
    case("POST", PAPER + "/comments", LOGGED_IN_NOT_FOUND, "/papers/{hidden_view}/comments",
         body={"body": "Hi"}),
    case("POST", "/comments/{comment_id}/edit", OWNER, "/comments/{edit_comment}/edit",
         body={"body": "Edited"}),
    case("POST", "/comments/{comment_id}/delete", OWNER_OR_MODERATOR,
         "/comments/{delete_comment}/delete"),
    case("GET", "/users/{username}", PUBLIC, "/users/ada"),
    case("GET", "/users/{username}", NOWHERE, "/users/nobody"),
    # --- submissions, claims, organizations --------------------------------------------------
    case("GET", "/submit", LOGGED_IN),
    case("POST", "/submit", LOGGED_IN, body={"paper": "{submit}"}),
    case("POST", "/claims", LOGGED_IN, body={"arxiv_id": "{claimed}", "position": "1"}),
    case("POST", "/claims", (LOGIN, MISSING, MISSING, OK, OK),
         body={"arxiv_id": "{hidden_view}", "position": "0"}),
    case("GET", "/orgs", PUBLIC),
    case("POST", "/orgs", ADMINS, body={"slug": "org-{n}", "name": "Org {n}"}),
    case("GET", "/orgs/{slug}", PUBLIC, "/orgs/lab"),
    case("GET", "/orgs/{slug}", NOWHERE, "/orgs/nope"),
    case("POST", ORG_MEMBERS, ORG_ADMINS, "/orgs/lab/members", body={"username": "m{n}"}),
    case("POST", ORG_MEMBERS + "/{username}/remove", ORG_ADMINS, "/orgs/lab/members/r{n}/remove"),
    case("POST", "/orgs/{slug}/edit", ORG_ADMINS, "/orgs/lab/edit", body={"name": "The Lab"}),
    # --- moderation: moderators moderate, only administrators administer ---------------------
    case("GET", "/moderation", MODERATORS),
    case("POST", "/moderation/papers/hide", MODERATORS, body={"arxiv_id": "{to_hide}"}),
    case("POST", "/moderation/papers/unhide", MODERATORS, body={"arxiv_id": "{to_unhide}"}),
    case("POST", MODERATION_USER + "suspend", MODERATORS, "/moderation/users/t{n}/suspend"),
    case("POST", MODERATION_USER + "unsuspend", MODERATORS, "/moderation/users/s{n}/unsuspend"),
    case("POST", MODERATION_USER + "suspend", ADMINS, "/moderation/users/mod{n}/suspend"),
    case("POST", MODERATION_USER + "suspend", (LOGIN, DENIED, DENIED, MISSING, MISSING),
         "/moderation/users/nobody/suspend"),
    case("POST", "/moderation/submissions/{entry_id}/{decision}", MODERATORS,
         "/moderation/submissions/{entry}/approve"),
    case("POST", "/moderation/claims/{claim_id}/{decision}", MODERATORS,
         "/moderation/claims/{claim}/reject"),
    case("GET", "/admin/audit", ADMINS),
    # --- search ------------------------------------------------------------------------------
    case("GET", "/search", PUBLIC, "/search?q=attention"),
    case("GET", "/api/papers/search", PUBLIC, "/api/papers/search?q=attention"),
    case("GET", "/api/papers/{arxiv_id:path}/similar", PUBLIC, "/api/papers/{paper}/similar"),
    # --- personal: for you, saves, folders, interests ----------------------------------------
    case("GET", "/for-you", LOGGED_IN),
    case("GET", "/api/me/feed", LOGGED_IN),
    case("POST", PAPER + "/dismiss", LOGGED_IN, "/papers/{paper}/dismiss"),
    case("POST", PAPER + "/undismiss", LOGGED_IN, "/papers/{paper}/undismiss"),
    case("POST", PAPER + "/save", LOGGED_IN, "/papers/{paper}/save"),
    case("POST", PAPER + "/unsave", LOGGED_IN, "/papers/{paper}/unsave"),
    case("GET", "/settings/interests", LOGGED_IN),
    case("POST", "/settings/interests", LOGGED_IN, body={"topics": "sparse attention"}),
    case("POST", "/folders", LOGGED_IN, body={"name": "Reading {n}"}),
    case("GET", "/users/{username}/folders/{slug}", PUBLIC, "/users/ada/folders/shared"),
    case("GET", "/users/{username}/folders/{slug}", (MISSING, OK, MISSING, MISSING, MISSING),
         "/users/ada/folders/private"),
    case("POST", FOLDER_ACTION, (LOGIN, DENIED, OK, OK, OK), "/users/ada/folders/shared/follow"),
    case("POST", FOLDER_ACTION, LOGGED_IN, "/users/ada/folders/shared/unfollow"),
    case("POST", FOLDER_ACTION, LOGGED_IN_NOT_FOUND, "/users/ada/folders/private/follow"),
    case("POST", FOLDER_ACTION, OWNER, "/users/ada/folders/{to_publish}/publish"),
    case("POST", FOLDER_ACTION, OWNER, "/users/ada/folders/{to_unpublish}/unpublish"),
    case("POST", FOLDER_ACTION, OWNER, "/users/ada/folders/{to_delete}/delete"),
    case("POST", FOLDER_ACTION, LOGGED_IN_NOT_FOUND, "/users/ada/folders/shared/explode"),
    # --- the digest: its secret links are the authority, no login needed --------------------
    case("GET", "/subscribe", PUBLIC),
    case("POST", "/subscribe", PUBLIC, body={"email": "sub{n}@example.org"}),
    case("GET", "/subscriptions/confirm/{signed}", PUBLIC, "/subscriptions/confirm/{signed}"),
    case("POST", "/subscriptions/confirm/{signed}", PUBLIC, "/subscriptions/confirm/{signed}"),
    case("GET", SUBSCRIPTION, PUBLIC, "/subscriptions/{sub}"),
    case("GET", SUBSCRIPTION, NOWHERE, "/subscriptions/no-such-token"),
    case("POST", SUBSCRIPTION, PUBLIC, "/subscriptions/{sub}", body=PREFERENCES),
    case("POST", SUBSCRIPTION, NOWHERE, "/subscriptions/no-such-token", body=PREFERENCES),
    case("GET", SUBSCRIPTION + "/unsubscribe", PUBLIC, "/subscriptions/{sub}/unsubscribe"),
    case("POST", SUBSCRIPTION + "/unsubscribe", PUBLIC, "/subscriptions/{unsub}/unsubscribe"),
    case("POST", SUBSCRIPTION + "/resubscribe", PUBLIC, "/subscriptions/{resub}/resubscribe"),
    case("GET", SUBSCRIPTION + "/preview", PUBLIC, "/subscriptions/{sub}/preview"),
    # --- feeds -------------------------------------------------------------------------------
    case("GET", "/feeds/daily.{fmt}", PUBLIC, "/feeds/daily.atom"),
    case("GET", "/feeds/weekly.{fmt}", PUBLIC, "/feeds/weekly.rss"),
    case("GET", "/feeds/monthly.{fmt}", PUBLIC, "/feeds/monthly.json"),
    case("GET", "/feeds/trending.{fmt}", PUBLIC, "/feeds/trending.atom"),
    case("GET", "/search/feed.{fmt}", PUBLIC, "/search/feed.atom?q=attention"),
    case("GET", "/orgs/{slug}/feed.{fmt}", PUBLIC, "/orgs/lab/feed.atom"),
    case("GET", "/users/{username}/folders/{slug}/feed.{fmt}", PUBLIC,
         "/users/ada/folders/shared/feed.atom"),
    case("GET", "/users/{username}/folders/{slug}/feed.{fmt}", NOWHERE,
         "/users/ada/folders/private/feed.atom"),
    case("GET", "/feeds/for-you/{token}.{fmt}", PUBLIC, "/feeds/for-you/{feed}.atom"),
    case("GET", "/feeds/for-you/{token}.{fmt}", NOWHERE, "/feeds/for-you/pf_unknown.atom"),
    case("GET", "/for-you/feed", LOGGED_IN),
    case("POST", "/for-you/feed", LOGGED_IN),
    case("POST", "/for-you/feed/revoke", LOGGED_IN),
    # --- Hugging Face-compatible API ---------------------------------------------------------
    case("GET", "/api/daily_papers", PUBLIC),
    case("GET", "/papers/{arxiv_id:path}.md", PUBLIC, "/papers/{paper}.md"),
    case("GET", "/api/papers/{arxiv_id:path}", PUBLIC, "/api/papers/{paper}"),
    case("GET", "/api/papers/{arxiv_id:path}", NOWHERE, "/api/papers/{hidden_view}"),
    api("POST", "/api/papers/index", LOGGED_IN, body={"arxivId": "{paper}"}),
    api("POST", "/api/papers/submit", LOGGED_IN, body={"arxivId": "{hf_submit}"}),
    *(
        api(method, path, WRONG_METHOD)
        for path in ("/api/papers/index", "/api/papers/submit")
        for method in ("GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS")
    ),
    # --- the JSON API: reads for everyone, the rest with a token -----------------------------
    api("GET", V1 + "/papers", PUBLIC),
    api("GET", V1 + "/lists/daily", PUBLIC),
    api("GET", V1 + "/lists/daily/{day}", PUBLIC, V1 + "/lists/daily/{day}"),
    api("GET", V1 + "/lists/weekly/{week}", PUBLIC, V1 + "/lists/weekly/{week}"),
    api("GET", V1 + "/lists/monthly/{month}", PUBLIC, V1 + "/lists/monthly/{month}"),
    api("GET", V1 + "/trending", PUBLIC),
    api("GET", V1 + f"/papers/{ARXIV}", PUBLIC, V1 + "/papers/{paper}"),
    api("GET", V1 + f"/papers/{ARXIV}", NOWHERE, V1 + "/papers/{hidden_view}"),
    api("GET", V1 + f"/papers/{ARXIV}/comments", PUBLIC, V1 + "/papers/{paper}/comments"),
    api("POST", V1 + f"/papers/{ARXIV}/comments", LOGGED_IN, V1 + "/papers/{paper}/comments",
        body={"body": "Hello"}),
    api("DELETE", V1 + "/comments/{comment_id}", OWNER_OR_MODERATOR,
        V1 + "/comments/{api_comment}"),
    api("PUT", V1 + f"/papers/{ARXIV}/vote", LOGGED_IN, V1 + "/papers/{paper}/vote"),
    api("DELETE", V1 + f"/papers/{ARXIV}/vote", LOGGED_IN, V1 + "/papers/{paper}/vote"),
    api("GET", V1 + "/organizations", PUBLIC),
    api("GET", V1 + "/organizations/{slug}", PUBLIC, V1 + "/organizations/lab"),
    api("GET", V1 + "/organizations/{slug}/papers", PUBLIC, V1 + "/organizations/lab/papers"),
    api("GET", V1 + "/search", PUBLIC, V1 + "/search?q=attention"),
    api("GET", V1 + f"/papers/{ARXIV}/similar", PUBLIC, V1 + "/papers/{paper}/similar"),
    api("GET", V1 + "/me", LOGGED_IN),
    api("GET", V1 + "/me/feed", LOGGED_IN),
    api("GET", V1 + "/me/saves", LOGGED_IN),
    api("POST", V1 + "/me/saves", LOGGED_IN, body={"arxiv_id": "{paper}"}),
    api("DELETE", V1 + f"/me/saves/{ARXIV}", LOGGED_IN, V1 + "/me/saves/{paper}"),
    api("GET", V1 + "/me/folders", LOGGED_IN),
    api("GET", V1 + "/me/subscription", LOGGED_IN),
    api("PUT", V1 + "/me/subscription", LOGGED_IN, body={"frequency": "weekly", "size": 5,
        "personal": False}),
    *(
        api(method, V1 + "/{rest:path}", NOWHERE, V1 + "/no-such-thing")
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    ),
    case("GET", "/openapi.json", PUBLIC),
    case("GET", "/docs", PUBLIC),
    case("GET", "/redoc", PUBLIC),
    case("GET", "/docs/assets/{name}", PUBLIC, "/docs/assets/swagger-ui.css"),
]
# fmt: on


# --- the table as docs/security.md shows it ----------------------------------------------------

WORDS = {
    "{paper}": "<paper>", "{claimed}": "<paper>", "{to_hide}": "<paper>",
    "{hidden_view}": "<hidden paper>", "{to_unhide}": "<hidden paper>",
    "{submit}": "<new paper>", "{hf_submit}": "<new paper>", "{me}": "<own name>",
    "{api_token}": "<ada's token>", "{reset}": "<reset link>", "{signed}": "<confirm link>",
    "{edit_comment}": "<ada's comment>", "{delete_comment}": "<ada's comment>",
    "{api_comment}": "<ada's comment>", "r{n}": "<member>", "m{n}": "<user>", "t{n}": "<user>",
    "s{n}": "<suspended user>", "mod{n}": "<moderator>", "{entry}": "<pending submission>",
    "{claim}": "<pending claim>", "{to_publish}": "<private folder>",
    "{to_unpublish}": "<public folder>", "{to_delete}": "<folder>", "{sub}": "<token>",
    "{unsub}": "<token>", "{resub}": "<token>", "{feed}": "<feed token>", "{day}": "<day>",
    "{week}": "<week>", "{month}": "<month>",
}  # fmt: skip
SHOWN = {OK: "yes", LOGIN: "log in", DENIED: "403", MISSING: "404", NOT_ALLOWED: "405"}


def _words(text: str) -> str:
    for placeholder, word in WORDS.items():
        text = text.replace(placeholder, word)
    return text


def markdown_table() -> str:
    """The table in Markdown: one row per case (``python tests/access_table.py`` prints it)."""
    lines = [
        "| Request | Anonymous | User (owner) | Other user | Moderator | Admin |",
        "|---|---|---|---|---|---|",
    ]
    for case in CASES:
        shown = [f"{k}={v}" for k, v in case.body.items() if "{" in str(v) and "{n}" not in str(v)]
        request = f"`{case.method} {_words(case.url)}`"
        if shown:
            request += " " + ", ".join(f"`{_words(item)}`" for item in shown)
        if case.auth == "token":
            request += " (API token)"
        lines.append(f"| {request} | " + " | ".join(SHOWN[a] for a in case.answers) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
