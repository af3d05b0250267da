"""Person names and author lines as arXiv writes them (shared by the .abs and Kaggle parsers).

TeX accents become Unicode, initials get arXiv's spacing, and an ``Authors`` line is split the
way arXiv does it: commas and "and", parenthesised affiliations (including numbered tables
such as "Smith (1), Jones (2) ((1) Univ A, (2) Univ B)"), collaborations kept whole. The
submitter's name is read from a ``From:`` line with its obfuscated address removed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from papertide.catalog.records import Author

# NUL (PostgreSQL cannot store it in text) and lone surrogates (not encodable as UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(value: object) -> str | None:
    """Collapse runs of whitespace (newlines included) to one space and strip; empty → None.
    NUL characters and lone surrogates, which no database column can hold, are dropped."""
    if not isinstance(value, str):
        return None
    if _UNSTORABLE.search(value):
        value = _UNSTORABLE.sub("", value)
    text = " ".join(value.split())
    return text or None


_ACCENT_MARKS = {
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    '"': "\u0308",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "u": "\u0306",
    "v": "\u030c",
    "H": "\u030b",
    "c": "\u0327",
    "k": "\u0328",
    "r": "\u030a",
    "d": "\u0323",
    "b": "\u0331",
}
_ACCENT = re.compile(
    r"""\\(?:(?P<sym>['`^"~=.])|(?P<word>[uvHckrdb])(?![A-Za-z]))\s*"""
    r"""(?:\{\s*(?P<braced>\\[ij]|[A-Za-z])\s*\}|(?P<bare>\\[ij](?![A-Za-z])|[A-Za-z]))"""
)
_TEX_LETTERS = {
    "ss": "ß",
    "ae": "æ",
    "AE": "Æ",
    "oe": "œ",
    "OE": "Œ",
    "aa": "å",
    "AA": "Å",
    "o": "ø",
    "O": "Ø",
    "l": "ł",
    "L": "Ł",
    "i": "ı",
    "j": "ȷ",
}
_TEX_LETTER = re.compile(r"\\(ss|ae|AE|oe|OE|aa|AA|o|O|l|L|i|j)(?![A-Za-z])(?:\{\}| (?=\w))?")
_BRACED_CHAR = re.compile(r"\{(\w)\}")


def _accent(match: re.Match[str]) -> str:
    base = match.group("braced") or match.group("bare")
    base = base[1] if base.startswith("\\") else base  # \'\i is an accented i
    return base + _ACCENT_MARKS[match.group("sym") or match.group("word")]


def tex_to_unicode(text: str) -> str:
    """Turn TeX accents and letters (``Bal\\'azs``, ``\\v{S}``, ``{\\O}bro``) into Unicode (NFC).

    Braces left around a single character (``{á}``) go too. Other TeX is left as it is.
    """
    if "\\" in text:
        text = _ACCENT.sub(_accent, text)
        text = _TEX_LETTER.sub(lambda m: _TEX_LETTERS[m.group(1)], text)
        text = unicodedata.normalize("NFC", text)
    if "{" in text:
        text = _BRACED_CHAR.sub(r"\1", text)
    return text


_TRAILING_ET_AL = re.compile(r"\s+et\.?\s+al\.?$")


def clean_name(name: str) -> str:
    """The final form of a person's name, whatever the source: Unicode, no TeX, single spaces.

    ``C. -P. Yuan`` (how arXiv's own splitter spaces ``C.-P.``) becomes ``C.-P. Yuan``, and a
    trailing "et al." (``B. Jones et al.``, with no comma before it) goes.
    """
    if _UNSTORABLE.search(name):
        name = " ".join(_UNSTORABLE.sub("", name).split())
    if "\\" in name or "{" in name or "~" in name:
        name = tex_to_unicode(name).replace("~", " ")
        name = " ".join(name.replace("{", "").replace("}", "").split())
    if ". -" in name:
        name = name.replace(". -", ".-")
    if " et al" in name:
        name = _TRAILING_ET_AL.sub("", name)
    return name


def clean_affiliation(text: str) -> str | None:
    affiliation = clean_text(text)
    if affiliation is not None and "\\" in affiliation:
        affiliation = tex_to_unicode(affiliation)
    return affiliation


_DOT_NO_SPACE = re.compile(r"(?<!\\)\.(?=\S)")


def _tidy_name(name: str) -> str:
    """arXiv's spacing of a name: one space after each initial (``J.P.Hague`` → ``J. P. Hague``)."""
    return clean_name(_DOT_NO_SPACE.sub(". ", " ".join(name.split())))


_SPACES = re.compile(r"\s+")
_AND = re.compile(r",?\s+(?:and|&)\s")
_NAME_SEPARATORS = re.compile(r"\s*[,:;]\s*")
_NAME_GOES_ON = re.compile(r"\s*([^\s,:;()]+)(?:\s*[,:;]|\s+(?:and|&)\s|\s*$)")
_ET_AL = re.compile(r"et\.?\s+al\.?", re.IGNORECASE)
_SUFFIX = re.compile(r"(?:Jr|Sr)\.?|I{2,3}|IV")
_COLLABORATION = re.compile(r"\b(?:collaboration|group|team)\b", re.IGNORECASE)
_REFERENCES = re.compile(r"\d+(?:\s*(?:,|and|&)\s*\d+)*")
_TABLE_ENTRY = re.compile(r"\(\s*(\d+)\s*\)")


@dataclass(slots=True)
class _Entry:
    name: str
    affiliations: list[str] = field(default_factory=list)


def _top_level_blocks(line: str) -> list[str]:
    """Split into text and top-level ``(...)`` blocks; nested parentheses stay in their block."""
    blocks: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(line):
        if char == "(":
            if depth == 0:
                blocks.append(line[start:index])
                start = index
            depth += 1
        elif char == ")" and depth > 0:
            depth -= 1
            if depth == 0:
                blocks.append(line[start : index + 1])
                start = index + 1
    blocks.append(line[start:])
    return [block for block in blocks if block.strip()]


def _affiliation_table(blocks: list[str]) -> dict[str, str]:
    """A closing ``((1) Univ A, (2) Univ B)`` block (taken off ``blocks``): affiliations by
    number."""
    if not blocks or not blocks[-1].startswith("(") or not blocks[-1][1:].lstrip().startswith("("):
        return {}
    inner = blocks.pop()[1:-1] if blocks[-1].endswith(")") else blocks.pop()[1:]
    parts = _TABLE_ENTRY.split(inner)  # ["", "1", " Univ A, ", "2", " Univ B"]
    table: dict[str, str] = {}
    for number, text in zip(parts[1::2], parts[2::2], strict=True):
        affiliation = clean_affiliation(text.rstrip(" \t\n.,;"))
        if affiliation:
            table[number] = affiliation
    return table


def _names_in(text: str) -> tuple[list[str], bool]:
    """The names in a stretch of the line between parentheses (split at commas, colons,
    semicolons, "and", "&"), and whether it ends with a name rather than a separator."""
    pieces = [
        piece.strip() for piece in _NAME_SEPARATORS.split(_AND.sub(",", _SPACES.sub(" ", text)))
    ]
    names: list[str] = []
    for piece in pieces:
        if not piece:
            continue
        if names and _SUFFIX.fullmatch(piece):
            names[-1] = f"{names[-1]}, {piece}"  # "John Smith, Jr." is one name
        else:
            names.append(piece)
    return names, bool(pieces[-1])


def _affiliations_of(block: str, table: dict[str, str]) -> list[str]:
    inner = block[1:-1] if block.endswith(")") else block[1:]
    if _REFERENCES.fullmatch(inner.strip()):
        return [table[ref] for ref in re.findall(r"\d+", inner) if ref in table]
    affiliation = clean_affiliation(inner)
    return [affiliation] if affiliation else []


def _continues_name(text: str) -> str | None:
    """The word that completes a name around a parenthesis, as ``Liang`` in ``Zhe (Rita) Liang,
    ...``: text going on with one word and no separator before it."""
    match = _NAME_GOES_ON.match(text)
    return match.group(1) if match and match.group(1) not in ("and", "&") else None


def _entries(blocks: list[str], table: dict[str, str]) -> list[_Entry]:
    entries: list[_Entry] = []
    owner: _Entry | None = None  # the name right before a "(": it is that name's affiliation
    attached: tuple[_Entry, str] | None = None  # the last "(...)" and the name it went to
    for block in blocks:
        if block.startswith("("):
            attached = (owner, block) if owner is not None else None
            if owner is not None:
                owner.affiliations = _affiliations_of(block, table)
            owner = None
            continue
        word = _continues_name(block) if attached else None
        owner = None
        if attached and word:
            entry, paren = attached
            entry.name = f"{entry.name} {paren} {word}"  # "Zhe (Rita) Liang": a nickname
            entry.affiliations = []
            block = block.split(word, 1)[1]
            owner = entry if not block.strip() else None
        attached = None
        names, ends_with_name = _names_in(block)
        new = [_Entry(name) for name in names if not _ET_AL.fullmatch(name)]
        entries.extend(new)
        if new and ends_with_name:
            owner = new[-1]
    return entries


def _back_propagate(entries: list[_Entry]) -> None:
    """``A, B (Univ)`` means both are at Univ: copy affiliations to the names before, as arXiv
    does, but not onto collaborations named at the start."""
    first = 0
    while first < len(entries) and _COLLABORATION.search(entries[first].name):
        first += 1
    last: list[str] = []
    for entry in reversed(entries[first:]):
        if entry.affiliations:
            last = entry.affiliations
        elif last:
            entry.affiliations = list(last)


def split_authors(line: str) -> list[Author]:
    """Split an Authors line as arXiv does: names separated by commas, colons, "and" and "&"
    (and semicolons); a parenthesis right after a name is its affiliation (numbers refer to a
    closing ``((1) ..., (2) ...)`` table), and an affiliation also covers the names before it
    that have none. ``et al`` is dropped. Names get arXiv's spacing after initials, then
    :func:`clean_name`. Beyond arXiv: a parenthesis inside a name (``Zhe (Rita) Liang``) stays
    in the name, and TeX thin spaces (``\\,``) are spaces.
    """
    if "\\," in line:
        line = line.replace("\\,", " ")  # TeX thin space
    blocks = _top_level_blocks(line)
    table = _affiliation_table(blocks)
    entries = _entries(blocks, table)
    _back_propagate(entries)
    authors = []
    for entry in entries:
        name = _tidy_name(entry.name)
        if name:
            authors.append(Author(name, "; ".join(entry.affiliations) or None))
    return authors


_ANGLE_ADDRESS = re.compile(r"\s*<[^>]*>\s*")
_PAREN_NAME = re.compile(r"^\S+@\S+\s*\((.*)\)$")


def submitter_name(value: str | None) -> str | None:
    """The name from a ``From:`` value (``Name <address>``, ``"Name" <address>``, ``address
    (Name)``), or a submitter field, as :func:`clean_name` gives it; no name → None."""
    text = clean_text(value)
    if text is None:
        return None
    match = _PAREN_NAME.match(text)
    if match:
        text = match.group(1)
    elif "<" in text:
        text = _ANGLE_ADDRESS.sub(" ", text)
    elif "@" in text and " " not in text:
        return None  # a bare address
    text = clean_text(text.strip().strip('"'))
    return clean_name(text) if text else None
