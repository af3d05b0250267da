"""Code and project links found in abstracts and comments."""

from __future__ import annotations

import pytest

from papertide.catalog.links import extract_links


@pytest.mark.parametrize(
    ("abstract", "comments", "code", "project"),
    [
        (
            "Code is available at https://github.com/shizhouxing/Local-Lipschitz-Constants.",
            None,
            "https://github.com/shizhouxing/Local-Lipschitz-Constants",
            None,
        ),
        (
            "Homepage: https://github.com/nealchen2003/LangFlow",
            None,
            "https://github.com/nealchen2003/LangFlow",
            None,
        ),
        (
            "We release models (https://huggingface.co/org/model-7b).",
            None,
            "https://huggingface.co/org/model-7b",
            None,
        ),
        (
            "Nothing here.",
            "10 pages. Project page: https://lab.example.org/thing/ Code: "
            "https://gitlab.com/group/sub/repo.git",
            "https://gitlab.com/group/sub/repo",
            "https://lab.example.org/thing/",
        ),
        ("See \\url{https://alice.github.io/proj}.", None, None, "https://alice.github.io/proj"),
        ("Sponsor us at https://github.com/sponsors/alice", None, None, None),
        ("No links at all", "5 figures", None, None),
    ],
)
def test_extract_links(
    abstract: str, comments: str | None, code: str | None, project: str | None
) -> None:
    links = extract_links(abstract, comments)
    assert links.code_url == code
    assert links.project_url == project
