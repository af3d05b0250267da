"""arXiv identifier rules.

Two schemes exist: new style ``YYMM.NNNN`` (April 2007 to 2014, from ``0704.0001``) /
``YYMM.NNNNN`` (2015 on), and old style ``archive[.SUBJ]/YYMMNNN`` (``hep-th/9901001``,
``math.GT/0309136``). Either may carry a version suffix ``vN``. Inputs may also be an ``arXiv:``
prefixed id, an abs/pdf URL, or an OAI identifier (``oai:arXiv.org:1412.8544``). Everything else
is rejected with a message quoting the value; digits are ASCII digits only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from papertide.errors import InvalidInput

FIRST_NEW_STYLE = "0704.0001"
_NEW = r"(?P<new>\d{4}\.\d{4,5})"
_OLD = r"(?P<old>[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/\d{7})"
# ASCII: \d alone would take the digits of every script ("٢٥٠٥.٠١٢٣٤") as an id.
_ID = re.compile(rf"(?:{_NEW}|{_OLD})(?:v(?P<version>[1-9]\d{{0,3}}))?", re.ASCII)
_PREFIXES = re.compile(
    r"^(?:arxiv:|oai:arxiv\.org:|"
    r"(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/|"
    r"(?:https?://)?(?:www\.)?huggingface\.co/papers/)",
    re.IGNORECASE | re.ASCII,  # ASCII: Unicode case folding reads "arxıv:" and "httpſ:" as ours
)


@dataclass(frozen=True, slots=True)
class ArxivId:
    """A normalised arXiv id: ``id`` without version, and the version if one was given."""

    id: str
    version: int | None = None

    def __str__(self) -> str:
        return f"{self.id}v{self.version}" if self.version else self.id


def parse_arxiv_id(value: str) -> ArxivId:
    """Normalise ``value`` to id + version or raise InvalidInput quoting it."""
    text = value.strip() if isinstance(value, str) else ""
    bare = _PREFIXES.sub("", text)
    bare = re.sub(r"(?:\.pdf)?/?$", "", bare) if bare != text else bare
    match = _ID.fullmatch(bare)
    if match is None:
        raise InvalidInput(
            f"{value!r} is not an arXiv id (expected e.g. 2505.01234v2 or hep-th/9901001)"
        )
    new = match.group("new")
    if new is not None:
        year, month, number = int(new[:2]), int(new[2:4]), new.split(".")[1]
        if (
            not 1 <= month <= 12
            or (len(number) == 5) != (year >= 15)
            or new < FIRST_NEW_STYLE
            or not int(number)
        ):
            raise InvalidInput(f"{value!r} is not an arXiv id (no such number {new})")
    else:
        yymm = match.group("old").split("/")[1][:4]
        if not 1 <= int(yymm[2:]) <= 12:
            raise InvalidInput(f"{value!r} is not an arXiv id (no such month in {yymm})")
    version = match.group("version")
    return ArxivId(new or match.group("old"), int(version) if version else None)


def is_arxiv_id(value: str) -> bool:
    try:
        parse_arxiv_id(value)
    except InvalidInput:
        return False
    return True
