"""Writes the hostile post fixtures beside this file, byte for byte.

Run `python tests/hostile/make_fixtures.py` after editing CASES; the
outputs are committed, and tests/test_hostile_posts.py checks that they
still match this script. Each fixture's expected outcome is in
EXPECTED.toml under the same name. Cases too big to commit (5 MB body,
20,000-deep nesting) or that need the file system (symlink loops, a folder
named x.md, odd file names) are built in a temporary folder by the test.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def fm(*lines: str, body: str = "<p>Body text.</p>") -> str:
    """A post: front matter lines between fences, then a body."""
    return "---\n" + "\n".join(lines) + "\n---\n" + body + "\n"


DATE = "date: 2021-11-16 09:34:36"
_BODY_ZH = "---\ntitle: 中文标题\ndate: 2021-11-16 09:34:36\ncategories:\n - 金融\n---\n<p>正文内容</p>\n"
_BODY_ASCII = "---\ntitle: Plain ascii title\ndate: 2021-11-16 09:34:36\n---\n<p>Plain body</p>\n"

# Every key a normalizer reads, for the wrong-type cases (draft/published are
# left out where a value of the type would legitimately make the post a draft).
_KEYS = ("title", "date", "updated", "categories", "tags", "author", "id", "headimg", "thumbnail", "cover",
         "link", "url", "description", "excerpt", "guid", "abbrlink", "comments")


def _wrong(value: str, keys=_KEYS, extra=()) -> str:
    return fm(*(f"{key}: {value}" for key in keys), *extra)


def _bomb(levels: int) -> str:
    lines = ["l0: &l0 [" + ", ".join(["lol"] * 10) + "]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]")
    return fm(*lines, "title: Alias bomb", DATE, f"draft: *l{levels - 1}")


CASES: dict[str, bytes | str] = {
    # ---------------------------------------------------------------- YAML
    "yaml_unquoted_colon": fm("title: Swift: unwrap optionals", DATE),
    "yaml_runaway_quotes": fm("title: \"\"\"'Swift：解包'\"\"\"", DATE),
    "yaml_unterminated_quote": fm('title: "never closed', DATE),
    "yaml_bad_indent": fm("title: ok", "categories:", "  - a", " - b", DATE),
    "yaml_tab_indent": fm("title: ok", "categories:", "\t- a", DATE),
    "yaml_unclosed_flow": fm("title: ok", "tags: {a: [1,", "  2}", DATE),
    "yaml_undefined_alias": fm("title: ok", "tags: *nowhere", DATE),
    "yaml_unhashable_key": fm("title: ok", "? [a, b]", ": c", DATE),
    "yaml_python_tag": fm('title: !!python/object/apply:os.system ["echo pwned"]', DATE),
    "yaml_list_not_mapping": fm("- a", "- b"),
    "yaml_scalar_not_mapping": fm("just a sentence"),
    "yaml_duplicate_key": fm("title: first", "title: second", DATE),
    "yaml_recursive_alias": fm("title: Recursive", DATE, "tags: &r [*r]", "categories: &c [*c, x]", "draft: &d [*d]", "author: &m {name: *m}"),
    "yaml_alias_bomb": _bomb(5),
    "yaml_non_string_keys": fm("123: a", "null: b", "true: c", "title: Odd keys", DATE),
    # ---------------------------------------------------------------- fences
    "frontmatter_unclosed": "\n---\ntitle: never closed\n\n<p>body</p>\n",
    "frontmatter_missing": "<p>Just a <b>body</b>, no front matter.</p>\n",
    "frontmatter_empty": "---\n---\n<p>Body under an empty front matter.</p>\n",
    "frontmatter_only": fm("title: Only front matter", DATE, body=""),
    "empty_file": "",
    "whitespace_only": " \n\t\r\n   \n\u3000\n",
    # ---------------------------------------------------------------- wrong types
    "wrong_types_list": _wrong("[1, [2, 3], null]"),
    "wrong_types_mapping": _wrong("{a: 1, b: [2]}"),
    "wrong_types_number": _wrong("12345"),
    "wrong_types_float": _wrong("-1.5e+300"),
    "wrong_types_bool": _wrong("true", extra=("draft: false", "published: true")),
    "wrong_types_null": _wrong("null", extra=("draft: null", "published: null")),
    "wrong_types_empty_string": _wrong('""', keys=tuple(k for k in _KEYS if k not in ("id", "guid", "abbrlink"))),
    "wrong_types_draft_flags": fm("title: Odd flags", DATE, "draft: maybe", "published: [1]"),
    "wrong_types_yaml_python_types": fm("title: Python types", DATE, "categories: !!set {a, b}", "tags: [!!binary aGVsbG8=, ok]"),
    "id_empty_string": fm("title: Empty id", DATE, 'id: ""'),
    # ---------------------------------------------------------------- drafts and dates
    "draft_true": fm("title: A draft", DATE, "draft: true"),
    "published_false": fm("title: Unpublished", DATE, "published: false"),
    "published_empty_string": fm("title: Published empty", DATE, 'published: ""'),
    "date_future": fm("title: From the future", "date: 2999-01-01 00:00:00"),
    "date_impossible": fm("title: February 30", "date: 2021-02-30 10:00:00"),
    "date_max_utc": fm("title: The last hour", "date: 9999-12-31T23:00:00Z"),
    "date_min_local": fm("title: Year one", "date: 0001-01-01 00:00:00"),
    # ---------------------------------------------------------------- encodings
    "encoding_gbk": _BODY_ZH.encode("gbk"),
    "encoding_utf16le_bom": b"\xff\xfe" + _BODY_ZH.encode("utf-16-le"),
    "encoding_utf16be_bom": b"\xfe\xff" + _BODY_ZH.encode("utf-16-be"),
    "encoding_utf16_truncated": b"\xff\xfe" + _BODY_ZH.encode("utf-16-le") + b"\x00",
    "encoding_utf16le_nobom": _BODY_ASCII.encode("utf-16-le"),
    "encoding_utf32_bom": _BODY_ASCII.encode("utf-32"),
    "encoding_stray_bytes": _BODY_ZH.encode().replace("正文".encode(), b"\xff\xfe\x80"),
    "encoding_latin1": fm("title: Café crème", DATE).encode("latin-1"),
    "encoding_utf8_bom": b"\xef\xbb\xbf" + _BODY_ZH.encode(),
    "encoding_double_bom": b"\xef\xbb\xbf\xef\xbb\xbf" + _BODY_ZH.encode(),
    "line_endings_crlf": fm("title: Windows line ends", DATE, "categories:", " - 金融", body="<p>one</p>\n<pre>a\tb\nc</pre>").replace("\n", "\r\n").encode(),
    "line_endings_cr": fm("title: Old Mac line ends", DATE, body="<p>one</p>").replace("\n", "\r").encode(),
    "line_endings_crlf_yaml_error": "\r\n\r\n---\r\ntitle: ok\r\ncategories:\r\n  - a\r\n - b\r\n---\r\nbody\r\n".encode(),
    # ---------------------------------------------------------------- characters
    "control_chars_body": fm(
        "title: Control characters in the body", DATE,
        body="<p>nul\x00 bell\x07 vt\x0b ff\x0c esc\x1b fffe\ufffe ffff\uffff end</p>\n<pre>col1\tcol2\n\tindented\nlast</pre>",
    ),
    "control_chars_title_escaped": fm('title: "bell\\a esc\\e vt\\v nul\\0 fffe\\uFFFE end"', 'description: "d\\x01e"', DATE),
    "control_chars_title_raw": fm("title: bell\x07 esc\x1b end", DATE),
    "c1_controls_title_raw": fm("title: del\x7f c1\x80\x9f end", DATE),
    "char_refs_controls": fm("title: \"ref&#1;title&#xFFFF;\"", DATE, body="<p>a&#1;b&#x1b;c&#0;d&#xD800;e&#xFFFE;f&#x110000;g</p>"),
    "cdata_end": fm(
        'title: "a ]]> b"', 'description: "d ]]> e"', DATE, "categories:", ' - "c]]>"',
        body="<p>x ]]> y</p><pre>]]></pre><![CDATA[ z ]]> w",
    ),
    "angle_brackets_title": fm('title: "1 < 2 > 0"', DATE),
    # valid HTML: </p> and </li> may be omitted; 260 of them are siblings, not 260 levels
    "omitted_end_tags": fm("title: Omitted end tags", DATE, body="<ul>" + "<li>i" * 260 + "</ul>" + "<p>p" * 260),
    "script_injection": fm(
        'title: "<script>alert(1)</script>Safe title"', DATE,
        body='<p onclick="x()">t</p><script>alert(2)</script><a href="javascript:alert(3)">j</a>'
        '<iframe src="https://evil.example/"></iframe><svg><script>alert(4)</script></svg><img src=x onerror=alert(5)>',
    ),
    # ---------------------------------------------------------------- ids
    "id_duplicate": fm("title: Steals the good post's id", DATE, "id: 0-known-good"),
    "id_duplicate_case": fm("title: Same id but for case", DATE, "id: 0-KNOWN-GOOD"),
    "id_traversal": fm("title: Traversal id", DATE, "id: ../../../../etc/passwd"),
    "id_dotdot": fm("title: Dot-dot id", DATE, "id: .."),
    "id_url_chars": fm("title: URL characters in the id", DATE, 'id: "/abs/x?y#z%41\\\\..\\\\w"'),
    # ---------------------------------------------------------------- categories
    "categories_dots": fm("title: Dotty categories", DATE, "categories:", ' - [".."]', ' - ["."]', ' - ["../../x"]', ' - ["/etc/passwd"]', ' - ["\\\\..\\\\x"]'),
    "categories_slash": fm("title: Slash category", DATE, "categories:", ' - ["A/B"]'),
    "categories_reserved_chars": fm("title: Reserved characters", DATE, "categories:", ' - ["?#%&<>\\""]'),
    "categories_same_name_two_parents": fm("title: Shared leaf", DATE, "categories:", " - [HostA, Shared]", " - [HostB, Shared]"),
    "categories_slug_collision": fm("title: Colliding slugs", DATE, "categories:", " - [Coll A]", " - [Coll-A]", ' - ["Coll?A"]'),
    "categories_invisible": fm("title: Invisible category", DATE, "categories:", ' - ["\\u202e\\u200b"]', ' - ["   "]'),
}


def build() -> dict[str, bytes]:
    return {name + ".md": (data if isinstance(data, bytes) else data.encode("utf-8")) for name, data in CASES.items()}


def main() -> int:
    wanted = build()
    for old in HERE.glob("*.md"):
        if old.name not in wanted:
            old.unlink()
    for name, data in wanted.items():
        (HERE / name).write_bytes(data)
    print(f"wrote {len(wanted)} fixtures to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
