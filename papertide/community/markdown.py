"""Comment markdown to safe HTML.

The subset: CommonMark (paragraphs, emphasis, links and autolinks, lists, block quotes, code
spans and blocks, horizontal rules, headings shown two levels down) plus tables and
~~strikethrough~~; line breaks are kept. Raw HTML is shown as text, images become links.

Math: ``$...$`` and ``$$...$$`` (inline, or on lines of their own for display math) are taken out
before markdown sees them (mdit-py-plugins' dollarmath, with pandoc's rules, so "$5 and $10"
stays text) and written back as escaped text with their delimiters inside an element with
class ``math``, which ``papertide.js`` typesets with KaTeX.

Mentions: ``@username`` outside code and links becomes a link to ``/users/<username>`` when the
resolver (see :func:`render_markdown`) knows the name; unknown names stay text.

Whatever markdown produced then goes through nh3 with a small allow-list: links keep only
http, https and mailto URLs (and the site's own ``/users/...`` paths) and get
``rel="nofollow noopener ugc"``; no attribute can carry script.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import Markup
from mdit_py_plugins.dollarmath import dollarmath_plugin

# lower-cased names -> the username as spelled, for those that exist
MentionResolver = Callable[[set[str]], Mapping[str, str]]

MENTION_RE = re.compile(
    r"(?<![A-Za-z0-9_@./-])@([A-Za-z0-9][A-Za-z0-9_-]{1,38}[A-Za-z0-9])(?![A-Za-z0-9_-])"
)
_USER_PATH = re.compile(r"/users/[A-Za-z0-9_-]{3,40}")

ALLOWED_TAGS = {
    "a", "blockquote", "br", "code", "del", "div", "em", "h3", "h4", "h5", "h6", "hr", "li",
    "ol", "p", "pre", "s", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    "th": {"style"},
    "td": {"style"},
}
ALLOWED_CLASSES = {"a": {"mention"}, "span": {"math"}, "div": {"math"}}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "nofollow noopener ugc"


def _math_inline(
    _self: RendererHTML, tokens: Sequence[Token], idx: int, _options: Any, _env: Any
) -> str:
    token = tokens[idx]
    fence = "$$" if token.type == "math_inline_double" else "$"
    return f'<span class="math">{fence}{escapeHtml(token.content)}{fence}</span>'


def _math_block(
    _self: RendererHTML, tokens: Sequence[Token], idx: int, _options: Any, _env: Any
) -> str:
    return f'<div class="math">$${escapeHtml(tokens[idx].content.strip())}$$</div>\n'


def _shift_headings(state: StateCore) -> None:
    """Comment headings sit under the page's own: # becomes h3, ## h4, the rest h5/h6."""
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1:]) + 2)}"


def _build() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.disable("image")
    md.use(
        dollarmath_plugin,
        allow_labels=False,
        allow_space=False,
        allow_digits=False,
        double_inline=True,
    )
    for name in ("math_inline", "math_inline_double"):
        md.add_render_rule(name, _math_inline)
    md.add_render_rule("math_block", _math_block)
    md.core.ruler.push("shift_headings", _shift_headings)
    return md


_MD = _build()


def render_markdown(source: str, resolve_mentions: MentionResolver | None = None) -> str:
    """Sanitized HTML for the markdown ``source`` (see the module's docstring)."""
    tokens = _MD.parse(source)
    if resolve_mentions is not None:
        _link_mentions(tokens, resolve_mentions)
    return sanitize(_MD.renderer.render(tokens, _MD.options, {}))


def mentioned_names(source: str) -> set[str]:
    """Lower-cased ``@names`` in ``source`` outside code and links."""
    names: set[str] = set()
    for children in _text_runs(_MD.parse(source)):
        for child in children:
            names.update(m.group(1).lower() for m in MENTION_RE.finditer(child.content))
    return names


def sanitize(html: str) -> str:
    """Keep only the allow-listed tags, attributes, classes and URLs."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_filter_attribute,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        allowed_classes=ALLOWED_CLASSES,
        filter_style_properties={"text-align"},
    )


def trusted_html(stored: str) -> Markup:
    """Stored comment HTML for a template: sanitized again on the way out (cheap, and it keeps
    rows written under an older, looser policy safe), then marked safe for Jinja."""
    return Markup(sanitize(stored))  # sanitized by nh3 on this very line


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Links go to http(s)/mailto URLs (nh3 checks the scheme) or to a user's page here."""
    if tag == "a" and attribute == "href":
        lowered = value.strip().lower()
        if lowered.startswith(("http://", "https://", "mailto:")):
            return value
        return value if _USER_PATH.fullmatch(value) else None
    return value


def _text_runs(tokens: list[Token]) -> list[list[Token]]:
    """The text tokens outside links of each inline token (code and math are other types)."""
    runs = []
    for token in tokens:
        if token.type != "inline" or not token.children:
            continue
        depth, run = 0, []
        for child in token.children:
            if child.type == "link_open":
                depth += 1
            elif child.type == "link_close":
                depth -= 1
            elif child.type == "text" and depth == 0:
                run.append(child)
        runs.append(run)
    return runs


def _link_mentions(tokens: list[Token], resolve: MentionResolver) -> None:
    runs = _text_runs(tokens)
    wanted = {
        m.group(1).lower() for run in runs for t in run for m in MENTION_RE.finditer(t.content)
    }
    known = resolve(wanted) if wanted else {}
    if not known:
        return
    for token in tokens:
        if token.type == "inline" and token.children:
            token.children = _split_children(token.children, known)


def _split_children(children: list[Token], known: Mapping[str, str]) -> list[Token]:
    result: list[Token] = []
    depth = 0
    for child in children:
        if child.type == "link_open":
            depth += 1
        elif child.type == "link_close":
            depth -= 1
        if child.type != "text" or depth > 0:
            result.append(child)
            continue
        result.extend(_mention_tokens(child.content, known))
    return result


def _mention_tokens(text: str, known: Mapping[str, str]) -> list[Token]:
    tokens: list[Token] = []
    start = 0
    for match in MENTION_RE.finditer(text):
        username = known.get(match.group(1).lower())
        if username is None:
            continue
        if match.start() > start:
            tokens.append(_text(text[start : match.start()]))
        link = Token("link_open", "a", 1)
        link.attrs = {"href": f"/users/{username}", "class": "mention"}
        tokens.extend((link, _text(match.group(0)), Token("link_close", "a", -1)))
        start = match.end()
    if start < len(text):
        tokens.append(_text(text[start:]))
    return tokens


def _text(content: str) -> Token:
    return Token("text", "", 0, content=content)
