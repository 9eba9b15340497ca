"""User data shown as literal text: model names, file names, column headers, values from a link.

Streamlit renders every message, caption and label as Markdown (links, images fetched by the
browser, emphasis, :colour[...] directives, math), and plotly renders a subset of HTML in hover
text, legends and axis titles. A name a person typed, uploaded or crafted into a link must appear
as the characters it holds, so it passes through ``literal`` (Markdown) or ``plain`` (plotly).
No Streamlit here: engine and tests can use it too.
"""
from __future__ import annotations

import html
import re

# ASCII punctuation that opens a Markdown construct (links, images, emphasis, code, HTML, math,
# :colour[...] directives, headings, lists, tables, entities): each is backslash-escaped.
_MARKDOWN = re.compile(r"([\\`*_\[\]{}()<>#+\-!|~$:&@=\"'.])")
# Bare URLs, www. names, e-mail addresses and :material/icon: codes are turned into links and icons
# after escapes are resolved, so an invisible word joiner (U+2060) breaks them up instead.
JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?i)(?<=www)(?=\\\.)|(?<=\\:)(?=\S)|(?=\\@)")  # www. | http:// :material/ | a@b


def literal(text) -> str:
    """``text`` as Markdown that renders exactly as ``text`` reads, on one line."""
    one_line = " ".join(str(text).split())  # a line break could start a heading, list or table
    return _AUTOLINK.sub(JOINER, _MARKDOWN.sub(r"\\\1", one_line))


def plain(text) -> str:
    """``text`` for plotly's HTML-like labels: '<', '>' and '&' shown, never interpreted."""
    return html.escape(str(text), quote=False)
