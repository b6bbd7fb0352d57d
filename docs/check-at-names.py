#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks that the reference shows lsock's name syntax `@foo` with its `@`.

gi-docgen reads `@word` in a doc comment or a content page as a reference to
the parameter `word` and drops the `@`, even inside backticks, so `@foo`
becomes `foo`. Doc comments and pages write the literal as
<code>&#64;foo</code> instead. This test reads the generated HTML and checks
the sentences that show the syntax, and lints the sources for `@word` that
gi-docgen would take for a parameter that the comment does not have.

Usage: check-at-names.py HTML_DIR [--sources FILE...] [--pages FILE...]

Output is TAP.
"""

import argparse
import html
import html.parser
import os
import re
import sys

# What gi-docgen (mdext.py) rewrites as a parameter reference
ARG_SIGIL_RE = re.compile(r"(^|\W)@([A-Za-z0-9_]+)\b")
DOC_COMMENT_RE = re.compile(r"/\*\*(.*?)\*/", re.S)
PARAM_LINE_RE = re.compile(r"^\s*\*?\s*@([A-Za-z0-9_]+)\s*:", re.M)
FENCE_RE = re.compile(r"^\s*(\*\s*)?```")


class PageText(html.parser.HTMLParser):
    """The text of a page, and the cells of each table row in it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.chunks = []
        self.rows = []
        self._row = None
        self._cell = None
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag in ("p", "li", "div", "br", "tr", "td", "th", "pre", "h1",
                     "h2", "h3", "h4"):
            self.chunks.append(" ")

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append(normalize("".join(self._cell)))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        # Block ends separate words too
        if tag in ("p", "li", "div", "td", "th", "tr", "pre"):
            self.chunks.append(" ")

    def handle_data(self, data):
        if self._skip:
            return
        self.chunks.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def text(self):
        return normalize("".join(self.chunks))


def normalize(s):
    # typogrify's &nbsp; and curly quotes; any run of white space
    s = html.unescape(s)
    s = s.replace("\u00a0", " ").replace("\u2019", "'").replace("\u2018", "'")
    s = s.replace("\u201c", '"').replace("\u201d", '"')
    return re.sub(r"\s+", " ", s).strip()


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def check(self, ok, what, diag=()):
        self.n += 1
        # "#" would start a TAP directive
        what = what.replace("#", "")
        print(f"{'ok' if ok else 'not ok'} {self.n} - {what}")
        if not ok:
            self.failed += 1
            for line in diag:
                print(f"# {line}")

    def done(self):
        print(f"1..{self.n}")
        return 1 if self.failed else 0


def load(html_dir, page, cache={}):
    if page not in cache:
        parser = PageText()
        with open(os.path.join(html_dir, page), encoding="utf-8") as f:
            parser.feed(f.read())
        parser.close()
        cache[page] = parser
    return cache[page]


def context(text, needle, width=60):
    """Where the page comes closest to a sentence, for the diagnostics."""
    key = needle.replace("@", "")[:24]
    i = text.find(key)
    if i < 0:
        return "(not even the words were found)"
    return "page has: …" + text[max(0, i - width):i + len(needle) + width] + "…"


# Sentences that must read so on the generated pages (after stripping tags,
# decoding entities and collapsing white space)
SENTENCES = {
    "ctor.Name.parse.html": [
        "@foo is the namespaced name foo, as lsock_name_new_namespaced() makes it;",
    ],
    "method.Name.to_string.html": [
        "reads: @foo for a namespaced name",
    ],
    "class.Name.html": [
        "reads: @foo for a namespaced name",
    ],
    "overview.html": [
        "@foo is the same name as socat's ABSTRACT-CONNECT:foo",
        "maps back to an equal name (@foo or the path)",
    ],
}

# Table rows: first cell -> the cells that must follow it (None: any)
ROWS = {
    "class.Name.html": {
        "@foo": ["namespaced foo"],
        "\\\\.\\pipe\\foo": ["namespaced foo"],
    },
    "overview.html": {
        "@foo": ["namespaced", "abstract socket \\0foo, exact length, unpadded",
                 "G_IO_ERROR_NOT_SUPPORTED", "\\\\.\\pipe\\foo"],
        "\\\\.\\pipe\\foo": ["namespaced", "as @foo", "as @foo", "\\\\.\\pipe\\foo"],
        "anything else, e.g. foo": ["generic", "as @foo", None, "as @foo"],
    },
}

# What the pages said while gi-docgen dropped the "@"
MANGLED = [
    re.compile(r"(?<![@\w])foo is the namespaced name foo"),
    re.compile(r"reads: foo for a namespaced name"),
    re.compile(r"(?<![@\w])foo is the same name as socat"),
    re.compile(r"equal name \(foo or the path\)"),
]


def check_html(tap, html_dir):
    for page, sentences in SENTENCES.items():
        text = load(html_dir, page).text()
        for s in sentences:
            tap.check(s in text, f"{page} says “{s}”", [context(text, s)])

    for page, rows in ROWS.items():
        table = load(html_dir, page).rows
        firsts = [r[0] for r in table if r]
        for first, rest in rows.items():
            row = next((r for r in table if r and r[0] == first), None)
            ok = (row is not None and len(row) > len(rest)
                  and all(want is None or got == want
                          for got, want in zip(row[1:], rest)))
            want = " | ".join([first] + ["…" if c is None else c for c in rest])
            tap.check(ok, f"{page}: the name-syntax table has the row “{want}”",
                      [f"row: {row}" if row else f"first cells: {firsts}"])

    pages = sorted(p for p in os.listdir(html_dir) if p.endswith(".html"))
    bad = []
    for page in pages:
        text = load(html_dir, page).text()
        for m in MANGLED:
            for hit in m.finditer(text):
                bad.append(f"{page}: …{text[max(0, hit.start() - 30):hit.end() + 30]}…")
    tap.check(not bad, f"no page of {len(pages)} shows @foo as foo", bad)

    # No row of the index's project table without a value (the theme prints
    # Website and Source even with no URL)
    with open(os.path.join(html_dir, "index.html"), encoding="utf-8") as f:
        index = f.read()
    empty = re.findall(r"<td><em>([^<]*)</em></td><td><a href=\"\"", index)
    tap.check(not empty, "the index has no empty project rows", empty)


def lint_sources(tap, sources):
    """`@word` in a doc comment that has no parameter `word`."""
    bad = []
    for path in sources:
        with open(path, encoding="utf-8") as f:
            src = f.read()
        for m in DOC_COMMENT_RE.finditer(src):
            body = m.group(1)
            params = set(PARAM_LINE_RE.findall(body))
            line0 = src.count("\n", 0, m.start()) + 1
            fenced = False
            for i, line in enumerate(body.split("\n")):
                if FENCE_RE.match(line):
                    fenced = not fenced
                    continue
                if fenced:
                    continue
                for a in ARG_SIGIL_RE.finditer(line):
                    if a.group(2) not in params:
                        bad.append(f"{os.path.basename(path)}:{line0 + i}: "
                                   f"@{a.group(2)} is not a parameter here: {line.strip()}")
    tap.check(not bad, "no doc comment has @word for a parameter it lacks", bad)


def lint_pages(tap, pages):
    """Content pages have no parameters: every `@word` outside code blocks is lost."""
    bad = []
    for path in pages:
        fenced = False
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if FENCE_RE.match(line):
                    fenced = not fenced
                    continue
                if not fenced and ARG_SIGIL_RE.search(line):
                    bad.append(f"{os.path.basename(path)}:{n}: {line.strip()}")
    tap.check(not bad, "no content page has @word outside code blocks", bad)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("html_dir")
    ap.add_argument("--sources", nargs="*", default=[])
    ap.add_argument("--pages", nargs="*", default=[])
    args = ap.parse_args()

    tap = Tap()
    check_html(tap, args.html_dir)
    if args.sources:
        lint_sources(tap, args.sources)
    if args.pages:
        lint_pages(tap, args.pages)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
