"""The Markdown subset of messages: rendered, and never a way to inject HTML."""

from __future__ import annotations

from twisted.trial import unittest

from homeserver.drocsid.markdown import render


class MarkdownTests(unittest.TestCase):
    def test_inline_formatting(self):
        self.assertEqual(render("**b** *i* _j_ ~~s~~ `c`"),
                         "<p><strong>b</strong> <em>i</em> <em>j</em> <del>s</del> <code>c</code></p>")
        self.assertEqual(render("snake_case_name"), "<p>snake_case_name</p>")
        self.assertEqual(render("**bold *and italic* too**"), "<p><strong>bold <em>and italic</em> too</strong></p>")

    def test_paragraphs_and_line_breaks(self):
        self.assertEqual(render("one\ntwo\n\nthree"), "<p>one<br>two</p><p>three</p>")
        self.assertEqual(render("a\r\nb"), "<p>a<br>b</p>")
        self.assertEqual(render(""), "")

    def test_code(self):
        self.assertEqual(render("`<b>**x**</b>`"), "<p><code>&lt;b&gt;**x**&lt;/b&gt;</code></p>")
        self.assertEqual(render("```py\n<i>x</i>\n  **y**\n```\nafter"),
                         '<pre><code class="language-py">&lt;i&gt;x&lt;/i&gt;\n  **y**\n</code></pre><p>after</p>')
        # An unclosed fence runs to the end.
        self.assertEqual(render("```\nx"), "<pre><code>x\n</code></pre>")
        # A language that is not a plain word is not a language.
        self.assertIn("&quot;", render('```x" onclick="y\nz\n```'))

    def test_quotes(self):
        self.assertEqual(render("> quoted\n> **more**\nplain"),
                         "<blockquote><p>quoted<br><strong>more</strong></p></blockquote><p>plain</p>")
        self.assertEqual(render(">> nested"), "<blockquote><blockquote><p>nested</p></blockquote></blockquote>")

    def test_links(self):
        self.assertEqual(render("[site](https://example.org/a?b=1&c=2)"),
                         '<p><a href="https://example.org/a?b=1&amp;c=2">site</a></p>')
        self.assertEqual(render("see https://example.org/x."),
                         '<p>see <a href="https://example.org/x">https://example.org/x</a>.</p>')
        self.assertEqual(render("[mail](mailto:a@example.org)"), '<p><a href="mailto:a@example.org">mail</a></p>')
        # Other schemes stay text.
        for bad in ("[x](javascript:alert(1))", "[x](data:text/html,hi)", "[x](vbscript:y)", "[x](/relative)"):
            self.assertNotIn("<a", render(bad), bad)
        self.assertNotIn("<a", render("javascript:alert(1)"))
        # Quotes cannot break out of the attribute.
        self.assertNotIn('"onmouseover', render('[x](https://a.org/"onmouseover="alert(1))'))
        self.assertNotIn("<a href=\"https://a.org/\"", render('https://a.org/"onmouseover=x'))

    def test_no_raw_html(self):
        for hostile in ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "**<b>x</b>**",
                        "<a href='javascript:x'>y</a>", "[<script>](https://a.org)", "> <iframe>",
                        "`</code><script>`", "\x00<b>"):
            rendered = render(hostile)
            self.assertNotIn("<script", rendered, hostile)
            self.assertNotIn("<img", rendered, hostile)
            self.assertNotIn("<iframe", rendered, hostile)
            self.assertNotIn("<b>", rendered, hostile)
            self.assertNotIn("\x00", rendered, hostile)
        self.assertEqual(render("<script>alert(1)</script>"), "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>")

    def test_tags_are_well_nested(self):
        import re
        for text in ("**a *b** c*", "*a **b* c**", "~~a **b~~ c**", "**a\n\nb**", "_a *b_ c*", "***x***"):
            rendered = render(text)
            stack = []
            for closing, name in re.findall(r"<(/?)(strong|em|del|code|p|a|blockquote|pre)\b", rendered):
                if not closing:
                    stack.append(name)
                else:
                    self.assertEqual(stack.pop(), name, (text, rendered))
            self.assertEqual(stack, [], (text, rendered))
