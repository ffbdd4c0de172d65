"""A Markdown subset rendered to sanitized HTML, for a message's ``formatted_body``.

Understood: paragraphs (blank lines) and line breaks, ``**bold**``, ``*italic*`` and
``_italic_``, ``~~strike~~``, ```inline code```, fenced code blocks (```` ```lang ````),
``> quotes`` and links (``[text](url)`` and bare URLs) whose scheme is http, https or
mailto. Everything else is escaped: no raw HTML passes through, and every tag the output
holds is one written here, properly nested.

Pure: no I/O, no state.
"""

from __future__ import annotations

import html
import re

_ALLOWED_SCHEMES = ("http://", "https://", "mailto:")
_FENCE = re.compile(r"^ {0,3}```\s*([A-Za-z0-9_+-]*)\s*$")
_FENCE_END = re.compile(r"^ {0,3}```\s*$")
_QUOTE = re.compile(r"^ {0,3}> ?(.*)$")
_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.S)
_LINK = re.compile(r"\[([^\[\]\n]+)\]\(([^()\s]+)\)")
_AUTOLINK = re.compile(r"(?<![\w/])((?:https?://|mailto:)[^\s\x00]*[^\s\x00.,:;!?'\")\]])", re.I)
_PLACEHOLDER = re.compile(r"\x00(\d+)\x00")
_INLINE = (
    (re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", re.S), "strong"),
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~", re.S), "del"),
    (re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])", re.S), "em"),
    (re.compile(r"(?<![_\w])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![_\w])", re.S), "em"),
)
_TAG = re.compile(r"<(/?)(strong|del|em)>")
_MAX_QUOTE_DEPTH = 8


def render(source: str) -> str:
    """The sanitized HTML of a Markdown message."""
    source = source.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return _blocks(source.split("\n"), 0)


def _blocks(lines: list[str], depth: int) -> str:
    out: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            out.append("<p>" + _inline("\n".join(paragraph)).replace("\n", "<br>") + "</p>")
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush()
            code: list[str] = []
            i += 1
            while i < len(lines) and not _FENCE_END.match(lines[i]):
                code.append(lines[i])
                i += 1
            i += 1  # the closing fence (or the end)
            language = fence.group(1)
            attr = f' class="language-{language}"' if language else ""
            out.append(f"<pre><code{attr}>" + html.escape("\n".join(code) + "\n", quote=True) + "</code></pre>")
            continue
        if _QUOTE.match(line) and depth < _MAX_QUOTE_DEPTH:
            flush()
            quoted = []
            while i < len(lines) and _QUOTE.match(lines[i]):
                quoted.append(_QUOTE.match(lines[i]).group(1))
                i += 1
            out.append("<blockquote>" + _blocks(quoted, depth + 1) + "</blockquote>")
            continue
        if not line.strip():
            flush()
        else:
            paragraph.append(line)
        i += 1
    flush()
    return "".join(out)


def _safe_url(url: str) -> str | None:
    """The URL (HTML-escaped for an attribute) if its scheme is allowed."""
    raw = html.unescape(url)
    if not raw.lower().startswith(_ALLOWED_SCHEMES) or any(c in raw for c in "<>\"'`\x00"):
        return None
    return html.escape(raw, quote=True)


def _balanced(fragment: str) -> bool:
    stack: list[str] = []
    for closing, name in _TAG.findall(fragment):
        if not closing:
            stack.append(name)
        elif not stack or stack.pop() != name:
            return False
    return not stack


def _emphasis(text: str) -> str:
    for pattern, tag in _INLINE:
        def replace(match, tag=tag):
            inner = match.group(1)
            return f"<{tag}>{inner}</{tag}>" if _balanced(inner) else match.group(0)
        text = pattern.sub(replace, text)
    return text


def _inline(text: str) -> str:
    saved: list[str] = []

    def keep(fragment: str) -> str:
        saved.append(fragment)
        return f"\x00{len(saved) - 1}\x00"

    # Code spans first: nothing inside them is formatted.
    parts, last = [], 0
    for match in _CODE_SPAN.finditer(text):
        parts.append(html.escape(text[last:match.start()], quote=True))
        parts.append(keep("<code>" + html.escape(match.group(2).strip(" ") or match.group(2), quote=True)
                          + "</code>"))
        last = match.end()
    parts.append(html.escape(text[last:], quote=True))
    text = "".join(parts)

    def link(match):
        href = _safe_url(match.group(2))
        if href is None:
            return match.group(0)
        return keep(f'<a href="{href}">' + _emphasis(match.group(1)) + "</a>")

    text = _LINK.sub(link, text)

    def autolink(match):
        href = _safe_url(match.group(1))
        return match.group(0) if href is None else keep(f'<a href="{href}">{match.group(1)}</a>')

    text = _AUTOLINK.sub(autolink, text)
    text = _emphasis(text)
    # Placeholders may hold placeholders (a code span in a link's text): restore until none.
    for _ in range(3):
        text, count = _PLACEHOLDER.subn(lambda m: saved[int(m.group(1))], text)
        if not count:
            break
    return text
