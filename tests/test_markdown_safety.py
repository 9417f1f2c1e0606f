"""Model text is untrusted: markdown is rendered without raw HTML and sanitised, on its own and on the rate page."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.template import engines
from django.urls import reverse
from django.utils.safestring import SafeString

from annotation.markdown import render_markdown

ATTACKS = [
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](  javascript:alert(1))",
    "[x](java\tscript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](vbscript:msgbox(1))",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "<iframe src=https://evil.example></iframe>",
    '<div onmouseover="alert(1)">hover</div>',
    "<svg/onload=alert(1)>",
    "![pic](javascript:alert(1))",
    '[x](https://ok.example "t" onclick=alert(1))',
    "<style>body{display:none}</style>",
    "<!-- <script>alert(1)</script> -->",
]


class _Elements(HTMLParser):
    """Collects the real elements of a document (escaped text like ``&lt;a href=…&gt;`` is not an element)."""

    def __init__(self):
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.elements


SAFE_URL = ("http://", "https://", "mailto:")


def assert_inert(html: str, page_urls: tuple[str, ...] = ()) -> None:
    for tag, attrs in elements(html):
        if page_urls and tag == "link" and attrs == {"rel": "icon", "href": "data:,"}:
            continue  # the page's own empty favicon
        assert tag not in {"script", "iframe", "svg", "img", "style", "object", "embed"} or (
            page_urls and tag == "script"
        ), tag
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        for name in ("href", "src", "action"):
            if attrs.get(name) is not None:
                assert attrs[name].startswith(SAFE_URL + page_urls), (tag, name, attrs[name])


@pytest.mark.parametrize("text", ATTACKS)
def test_attacks_render_inert(text):
    html = render_markdown(text)
    assert isinstance(html, SafeString)
    assert_inert(str(html))


def test_script_tag_is_shown_as_text():
    assert str(render_markdown("<script>alert(1)</script>")) == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"


def test_javascript_link_is_not_a_link():
    html = str(render_markdown("[x](javascript:alert(1))"))
    assert "<a" not in html and "javascript:alert(1)" in html  # kept as visible text


def test_harmless_markdown_survives():
    html = str(
        render_markdown(
            "# Title\n\n**bold** _it_ `code` ~~old~~\n\n- one\n- two\n\n"
            "```\nprint(1)\n```\n\n> quote\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n[docs](https://example.com/x)"
        )
    )
    for fragment in ["<h1>Title</h1>", "<strong>bold</strong>", "<em>it</em>", "<code>code</code>", "<s>old</s>",
                     "<li>one</li>", "<pre><code>print(1)\n</code></pre>", "<blockquote>", "<td>1</td>"]:  # fmt: skip
        assert fragment in html, fragment
    assert '<a href="https://example.com/x" rel="noopener noreferrer nofollow">docs</a>' in html


def test_images_become_links_and_are_not_fetched():
    html = str(render_markdown("![a chart](https://tracker.example/pixel.png)"))
    assert "<img" not in html
    assert 'href="https://tracker.example/pixel.png"' in html and "[image: a chart]" in html


def test_empty_and_none():
    assert render_markdown("") == "" and render_markdown(None) == ""


def test_template_filter_matches_the_function():
    template = engines["django"].from_string("{% load verdict_markdown %}{{ text|render_markdown }}")
    text = "<script>alert(1)</script> and [x](javascript:alert(1)) and **ok**"
    assert template.render({"text": text}) == str(render_markdown(text))


@pytest.mark.django_db
def test_rate_page_renders_hostile_outputs_inert(client, project, rater, make_task):
    project.guidelines = "Guideline <script>alert('g')</script> [g](javascript:alert(2))"
    project.save()
    make_task(
        project,
        prompt_text="Prompt <img src=x onerror=alert(3)>",
        texts=[
            "<script>alert(1)</script>",
            "[x](javascript:alert(1))",
            '<a href="javascript:alert(1)" onclick="alert(1)">click</a>',
            "Fine **answer** with [a link](https://example.com)",
        ],
    )
    client.force_login(rater)
    response = client.get(reverse("annotation:rate", args=[project.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(&#x27;g&#x27;)&lt;/script&gt;" in html or "&lt;script&gt;alert('g')" in html
    assert "&lt;img src=x onerror=alert(3)&gt;" in html
    assert "[x](javascript:alert(1))" in html  # shown as text, not a link
    assert_inert(html, page_urls=("/",))
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">a link</a>' in html
    # The only real scripts are the static rate.js and the inert JSON data block.
    scripts = [attrs for tag, attrs in elements(html) if tag == "script"]
    assert scripts == [
        {"id": "rate-data", "type": "application/json"},
        {"src": "/static/annotation/rate.js", "defer": None},
    ]
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_bidi_controls_are_shown_not_obeyed():
    from annotation.markdown import render_markdown

    html = str(render_markdown("open evil\u202eexe.txt now \u2067x\u2069"))
    assert "\u202e" not in html and "\u2067" not in html and "\u2069" not in html
    assert "evil&lt;U+202E&gt;exe.txt" in html and "&lt;U+2067&gt;x&lt;U+2069&gt;" in html
