"""The shapes of the JSON API (``/api/v1/``): pydantic models, so the OpenAPI schema describes
exactly what the endpoints send. Every route serializes its answer through one of these."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from papertide.community.comments import MAX_BODY_CHARS

_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_day(value: Any) -> Any:
    if isinstance(value, str) and _ISO_DAY.fullmatch(value):
        return value
    raise ValueError("expected a date as YYYY-MM-DD")


def _json_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a whole number")
    return value


# A day in a URL: YYYY-MM-DD only (pydantic alone would also take a Unix time such as 0).
IsoDay = Annotated[date, BeforeValidator(_iso_day)]
# A whole number in a JSON body: 5 or 5.0 (the same number in JSON), never "5" or true.
JsonInt = Annotated[int, Field(strict=False), BeforeValidator(_json_number)]
# A row id in a JSON body: 1 to 2**31 - 1 (ids are 32-bit in the database).
JsonId = Annotated[int, Field(strict=False, ge=1, le=2**31 - 1), BeforeValidator(_json_number)]


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


class ApiInput(BaseModel):
    """A request body: unknown fields and values of the wrong JSON type (``"5"`` for a number,
    ``0`` for false) are refused, not converted, and so is text holding a NUL character (no
    text column takes one on PostgreSQL)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if _holds_nul(data):
            raise ValueError("text may not hold a NUL character (\\u0000)")
        return data


# --- errors -------------------------------------------------------------------------------------


class ErrorDetail(ApiModel):
    code: str = Field(description="Stable machine-readable code, e.g. `not_found`.")
    message: str = Field(description="What went wrong, for people.")


class ErrorBody(ApiModel):
    """Every error answer under /api/ has this shape."""

    error: ErrorDetail


# --- papers ------------------------------------------------------------------------------------


class OrganizationRef(ApiModel):
    slug: str
    name: str


class PaperCard(ApiModel):
    """A paper as lists show it."""

    arxiv_id: str = Field(examples=["2502.00001"])
    title: str
    excerpt: str = Field(description="The abstract, cut near 300 characters.")
    authors: list[str] = Field(description="The first three authors, in order.")
    author_count: int
    published_at: datetime | None = Field(description="When arXiv published version 1.")
    upvotes: int
    organization: OrganizationRef | None
    code_url: str | None
    project_url: str | None
    listed_on: date | None = Field(description="The (latest) daily list the paper is on.")
    position: int | None = Field(description="0-based place on that day's list, as imported.")
    url: str = Field(description="The paper's page on this site (a path).")
    voted: bool | None = Field(description="Whether the token's user upvoted it (no token: null).")


class PaperList(ApiModel):
    items: list[PaperCard]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done.")


class DayList(PaperList):
    day: date = Field(description="The day of the list shown.")
    previous_day: date | None = Field(description="The nearest earlier day with papers.")
    next_day: date | None = Field(description="The nearest later day with papers.")


class PeriodList(PaperList):
    period: str = Field(description="`2025-W18` or `2025-05`.")
    first_day: date
    last_day: date


class TrendingCard(PaperCard):
    rank: int = Field(description="1 is the top.")
    score: float = Field(description="(upvotes + 1) / (hours since listed + 2) ** gravity.")
    reason: str = Field(description="Why it ranks here, e.g. `12 upvotes, listed today, #3`.")


class TrendingList(ApiModel):
    items: list[TrendingCard]
    next_cursor: str | None


class SearchCard(PaperCard):
    title_html: str = Field(description="The title as escaped HTML, matched words in <mark>.")
    excerpt_html: str = Field(description="The excerpt as escaped HTML, matched words marked.")
    pinned: str | None = Field(description="Why it was put first (exact id or title), if so.")


class SearchList(ApiModel):
    items: list[SearchCard]
    next_cursor: str | None
    total: int = Field(description="Results in all (relevance order: at most 200).")
    mode: Literal["hybrid", "keyword", "vector"] = Field(description="The ranking that ran.")
    notice: str | None = Field(description="Why semantic search was not used, when it was not.")


class SimilarList(ApiModel):
    items: list[PaperCard]
    similarity: Literal["embedding", "keyword"]


class AuthorOut(ApiModel):
    name: str
    affiliation: str | None


class VersionOut(ApiModel):
    number: int
    submitted_at: datetime | None
    size: str | None


class Paper(ApiModel):
    """Everything about one paper."""

    arxiv_id: str = Field(examples=["2502.00001"])
    title: str
    abstract: str
    authors: list[AuthorOut]
    categories: list[str]
    primary_category: str | None
    versions: list[VersionOut]
    days_listed: list[date] = Field(description="Days on the daily list, newest first.")
    published_at: datetime | None
    updated_at: datetime | None
    latest_version: int | None
    comments: str | None = Field(description="arXiv's comments field (pages, venue).")
    journal_ref: str | None
    doi: str | None
    report_no: str | None
    license: str | None
    msc_class: str | None
    acm_class: str | None
    submitter: str | None
    ai_summary: str | None
    ai_summary_model: str | None
    code_url: str | None
    project_url: str | None
    organization: OrganizationRef | None
    upvotes: int
    withdrawn: bool
    comment_count: int = Field(description="Comments that are not deleted.")
    url: str
    voted: bool | None


# --- community ---------------------------------------------------------------------------------


class CommentOut(ApiModel):
    id: int
    arxiv_id: str
    parent_id: int | None
    author: str | None = Field(description="Username; null once the comment is deleted.")
    body_markdown: str = Field(description="The source; empty once deleted.")
    body_html: str = Field(description="Rendered and sanitized HTML; empty once deleted.")
    created_at: datetime
    edited_at: datetime | None
    deleted: bool


class CommentList(ApiModel):
    items: list[CommentOut] = Field(description="Oldest first; replies name their parent.")
    next_cursor: str | None


class CommentIn(ApiInput):
    body: str = Field(min_length=1, max_length=MAX_BODY_CHARS, description="Markdown with math.")
    parent_id: JsonId | None = Field(default=None, description="The comment answered.")


class VoteState(ApiModel):
    arxiv_id: str
    upvotes: int
    voted: bool


class Organization(ApiModel):
    slug: str
    name: str
    description: str | None
    avatar_url: str | None
    created_at: datetime
    member_count: int


class OrganizationList(ApiModel):
    items: list[Organization]
    next_cursor: str | None


class Member(ApiModel):
    username: str
    display_name: str | None
    role: Literal["member", "admin"]
    added_at: datetime


class OrganizationDetail(Organization):
    members: list[Member]
    url: str


# --- the token's user --------------------------------------------------------------------------


class Me(ApiModel):
    username: str
    display_name: str | None
    email: str
    role: Literal["user", "moderator", "admin"]
    votes_public: bool
    created_at: datetime


class FeedCard(PaperCard):
    score: float = Field(description="(1 - w) * personal + w * trending.")
    personal: float = Field(description="Similarity to what you upvoted, saved or asked for.")
    trending: float = Field(description="log(1 + upvotes), scaled 0-1 over the window.")
    reason: str


class FeedList(ApiModel):
    items: list[FeedCard]
    next_cursor: str | None
    total: int
    cold_start: bool = Field(description="No saves, votes or topics yet: trending order.")


class SavedPaper(ApiModel):
    paper: PaperCard
    folder: str = Field(description="The folder's short name (`saved` is the default).")
    saved_at: datetime


class SaveList(ApiModel):
    items: list[SavedPaper] = Field(description="Most recently saved first.")
    next_cursor: str | None


class SaveIn(ApiInput):
    arxiv_id: str = Field(min_length=1, max_length=64, examples=["2502.00001"])
    folder: str = Field(default="saved", min_length=1, max_length=80)


class SaveState(ApiModel):
    arxiv_id: str
    folder: str | None = Field(description="The folder; null: every folder.")
    saved: bool


class Folder(ApiModel):
    slug: str
    name: str
    public: bool
    paper_count: int


class FolderList(ApiModel):
    items: list[Folder]


RuleText = Annotated[str, Field(max_length=100)]


class Rules(ApiInput):
    """Hard filters: include (any rule) and exclude (every rule) by these."""

    keywords: list[RuleText] = Field(default=[], max_length=50)
    categories: list[RuleText] = Field(default=[], max_length=50)
    authors: list[RuleText] = Field(default=[], max_length=50)
    organizations: list[RuleText] = Field(default=[], max_length=50)


class Subscription(ApiModel):
    email: str
    state: Literal["unconfirmed", "active", "unsubscribed", "bouncing"]
    frequency: Literal["daily", "weekly"]
    size: int = Field(description="Papers per section.")
    personal: bool = Field(description="Whether digests carry a 'picked for you' section.")
    include: Rules
    exclude: Rules


class SubscriptionIn(ApiInput):
    frequency: Literal["daily", "weekly"]
    size: JsonInt = Field(ge=3, le=30)
    personal: bool
    include: Rules = Rules()
    exclude: Rules = Rules()
