"""Markdown for untrusted text (prompts, model outputs, guidelines): rendered without raw HTML, then sanitised.

Two layers: markdown-it-py never passes raw HTML through (``html: False``) and refuses ``javascript:`` links;
nh3 (ammonia) then keeps only a small allow-list of harmless tags and attributes and only http/https/mailto URLs.
Images become plain links: a model output must not make the rater's browser fetch a third-party URL.
Bidirectional control characters (U+202E and friends) are shown as visible ``<U+202E>`` markers, as code viewers
do, instead of silently reordering what the rater reads ("evil\u202eexe.txt" must not read "eviltxt.exe").
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

from config.text import show_bidi_controls

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6",
    "strong", "em", "b", "i", "del", "s", "sub", "sup",
    "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "noopener noreferrer nofollow"
def _image_as_link(self, tokens, idx, options, env) -> str:
    """Render ``![alt](url)`` as a plain link: nothing is fetched unless the rater clicks it."""
    token = tokens[idx]
    alt = self.renderInline(token.children or [], options, env) or "image"
    src = escapeHtml(token.attrGet("src") or "")
    return f'<a href="{src}">[image: {alt}]</a>'


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.add_render_rule("image", _image_as_link)
    return md


def sanitize_html(html: str) -> str:
    """Keep only the allow-listed tags, attributes and URL schemes of `html`."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel=LINK_REL,
        strip_comments=True,
    )


def render_markdown(text: str | None) -> SafeString:
    """Render untrusted markdown to sanitised HTML that is safe to insert into a page."""
    if not text:
        return mark_safe("")
    return mark_safe(sanitize_html(_parser().render(show_bidi_controls(str(text)))))  # noqa: S308 - sanitised by nh3 just above
