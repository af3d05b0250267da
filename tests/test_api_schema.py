"""Schemathesis against /openapi.json: every operation it describes (/api/v1/ and the Hugging
Face-compatible /api/daily_papers, /api/papers/..., /api/me/feed), fed generated requests (valid
and invalid) with an API token, on a small seeded catalog, arXiv replayed for the papers the
catalog lacks; no answer may be a 5xx, every answer must match the schema (status codes,
headers, content type, body), and every operation must succeed at least once."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema
from sqlalchemy import Engine
from test_api_v1 import make_app, seed
from test_submissions import ArxivReplay

from papertide.accounts.users import user_by_username
from papertide.community import comments
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.digest import subscriptions
from papertide.web.routes_api_common import EXAMPLE_ARXIV_ID

# Examples per operation: a quick, reproducible run by default; set the variable for a longer,
# random one (PAPERTIDE_TEST_API_EXAMPLES=200 pytest tests/test_api_schema.py).
DEEP = os.environ.get("PAPERTIDE_TEST_API_EXAMPLES")
MAX_EXAMPLES = int(DEEP or 12)


def rightly_refused(case: Any) -> bool:
    """Requests the schema allows but the API refuses (400) by design, where "valid data must
    be accepted" cannot hold; every other check still runs on them (no 5xx, the 400 matches
    the schema): a made-up cursor (cursors are opaque and signed), a date range whose start is
    after its end (refused as on the search page), and for /api/daily_papers more than one of
    date, week and month, or a week 53 the year lacks."""
    query = case.query or {}
    if query.get("cursor") is not None:
        return True
    if sum(query.get(name) is not None for name in ("date", "week", "month")) > 1:
        return True
    if re.search("-W53$", str(query.get("week"))):
        return True  # a 53rd week that the year lacks
    start, end = query.get("from"), query.get("to")
    return isinstance(start, str) and isinstance(end, str) and start > end


TEXT_PARAMETERS = {"q", "category", "organization", "folder", "cursor"}


def _typed_text(value: Any) -> bool:
    """How a boolean, number or null arrives in a query string: "true", "7", "null"."""
    if not isinstance(value, str) or value in ("true", "false", "null"):
        return True
    try:
        float(value)
    except ValueError:
        return False
    return True


def sent_as_text(case: Any) -> bool:
    """A "negative" request that only put a non-string (false, 7, null) in a text parameter:
    in a query string it arrives as the text "false", "7" or "null", which may well be valid
    (an unknown category is no error), so it need not be refused."""
    if case.meta is None or not case.meta.generation.mode.is_negative:
        return False
    for name, value in (case.query or {}).items():
        values = value if isinstance(value, list) else [value]
        if name in TEXT_PARAMETERS and any(_typed_text(v) for v in values):
            return True
    return False


@pytest.fixture(autouse=True)
def node_id(request: pytest.FixtureRequest) -> None:
    """Schemathesis' lazy schemas read ``node._nodeid``, which pytest 9.2 no longer keeps."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@pytest.fixture
def api_token(engine: Engine, settings: Settings) -> str:
    alice, _bob = seed(engine, settings)
    with write_transaction(engine) as connection:
        user = user_by_username(connection, "alice")
        # So that PUT /me/subscription and DELETE /comments/1 can succeed.
        subscriptions.subscribe(connection, user.email, size=10, user_id=user.id)
        comments.post_comment(connection, user, EXAMPLE_ARXIV_ID, "A first comment")
    return alice


@pytest.fixture
def api_app(settings: Settings, api_token: str) -> FastAPI:
    app = make_app(
        settings,
        api_ip_rate_limit=1_000_000,
        api_token_rate_limit=1_000_000,
        # So that POST /api/papers/submit can succeed on any day with the seeded papers (the
        # schema cannot know a paper's age, which decides a 400 by the rules of /submit).
        submission_allow_weekends=True,
        submission_max_age_days=1_000_000,
    )
    app.state.arxiv_transport = ArxivReplay(shift=True).transport()  # never the network
    # Loaded before the run, not by the first request that needs it (schemathesis gives each
    # request ten seconds, and loading takes longer on a busy machine).
    app.state.search.embedder(wait=True)
    return app


@pytest.fixture
def api_schema(api_app: FastAPI) -> OpenApiSchema:
    loaded = schemathesis.openapi.from_asgi("/openapi.json", api_app)
    # Unknown query parameters and headers are ignored, as HTTP APIs do, not refused; NUL
    # characters are refused everywhere (400, see test_api_v1.test_nul_characters_are_refused).
    loaded.config.generation.update(allow_extra_parameters=False, allow_x00=False)
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def answered(api_schema: OpenApiSchema) -> Iterator[dict[str, set[int]]]:
    """The statuses each operation answered; afterwards, every operation must have answered
    2xx at least once, so the run went past the validation and the checks of tokens."""
    seen: dict[str, set[int]] = {}
    yield seen
    missing = [
        op.ok().label
        for op in api_schema.get_all_operations()
        if not any(200 <= status < 300 for status in seen.get(op.ok().label, ()))
    ]
    assert missing == [], f"never answered 2xx: {missing}; answers: {seen}"


@schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=DEEP is None,
)
def test_api_matches_its_schema(case: Any, api_token: str, answered: dict[str, set[int]]) -> None:
    excluded = [positive_data_acceptance] if rightly_refused(case) else []
    if sent_as_text(case):
        excluded.append(negative_data_rejection)
    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {api_token}"}, excluded_checks=excluded
    )
    answered.setdefault(case.operation.label, set()).add(response.status_code)
