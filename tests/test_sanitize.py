"""The sanitizing policy of DESIGN.md, checked on small bodies, for every engine."""

from __future__ import annotations

import re

from urllib.parse import urljoin

import html5lib
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from feeds.policy import Policy, absolutize, get_sanitizer

BASE = "https://example.org/posts/x/"
ENGINES = ["bleach", "bleach-html5lib", "nh3"]


@pytest.fixture(params=ENGINES)
def clean(request):
    try:
        sanitizer = get_sanitizer(request.param, Policy(drop_selectors=(".appendQr_wrap", "div.ad > p"), iframe_hosts=("player.youku.com",)))
    except (ImportError, ValueError) as exc:
        pytest.skip(f"{request.param} engine not available: {exc}")

    def run(body: str):
        return sanitizer.clean(body, BASE)

    return run


def elements(markup: str):
    fragment = html5lib.parseFragment(markup, treebuilder="etree", namespaceHTMLElements=False)
    return list(fragment.iter())


def test_script_and_style_go_with_their_text(clean):
    out = clean("<p>keep</p><script>var secret = 1;</script><style>.x{color:red}</style><p>also</p>").html
    assert "secret" not in out and "color:red" not in out and "<script" not in out and "<style" not in out
    assert "keep" in out and "also" in out


def test_sina_qr_block_with_escaped_css_is_removed_entirely(clean):
    body = (
        '<p>正文</p><div class="appendQr_wrap"><style>.appendQr_normal&#123;float:left&#125;</style>'
        '<div class="appendQr_normal"><img src="https://n.sinaimg.cn/qr.png"><p>扫码下载</p></div></div>'
    )
    result = clean(body)
    assert "appendQr" not in result.html and "float:left" not in result.html and "扫码" not in result.html
    assert "float" not in result.text
    assert "https://n.sinaimg.cn/qr.png" in result.dropped_images


def test_images_of_a_removed_block_are_reported_as_written(clean):
    """A placeholder image inside a removed block is reported as it was written, with its lazy source."""
    body = (
        '<p>正文</p><div class="appendQr_wrap"><p><img src="/img/loading.gif" data-src="/img/qr-real.png"></p></div>'
        '<p>尾 <img src="/img/blank.gif" data-src="/img/kept.jpg"></p>'
    )
    result = clean(body)
    assert {"https://example.org/img/loading.gif", "https://example.org/img/qr-real.png"} <= result.dropped_images
    assert "https://example.org/img/kept.jpg" not in result.dropped_images
    assert 'src="https://example.org/img/kept.jpg"' in result.html


def test_comments_hidden_elements_and_event_handlers(clean):
    body = (
        "<!-- 正文下iframe --><p onclick=\"steal()\" onmouseover='x()'>text</p>"
        '<a href="https://www.zhihu.com/q/1" hidden>查看知乎原文</a><input type="hidden" value="t">'
        '<figcaption style="display: none;">caption</figcaption><p aria-hidden="true">visible</p>'
    )
    out = clean(body).html
    assert "<!--" not in out and "正文下" not in out
    assert "onclick" not in out and "onmouseover" not in out and "steal" not in out
    assert "查看知乎原文" not in out and "input" not in out and "caption" not in out
    assert "visible" in out


def test_drop_selectors_with_child_combinator(clean):
    out = clean('<div class="ad"><p>buy now</p><span>keep me</span></div>').html
    assert "buy now" not in out and "keep me" in out


def test_javascript_urls_removed(clean):
    out = clean('<a href="javascript:alert(1)">x</a><a href=" JaVaScRiPt:alert(1)">y</a><img src="javascript:alert(1)">').html
    assert "javascript" not in out.lower()


def test_images_keep_src_alt_referrerpolicy_and_lazy_src_is_promoted(clean):
    body = (
        '<img src="https://a.example/1.jpg" alt="一张图" referrerpolicy="no-referrer" w="640" data-v-12ab>'
        '<img class="lazy" src="https://a.example/grey.gif" data-original="//b.example/2.jpg">'
        '<img data-original-src="//upload-images.jianshu.io/u/3.png">'
        '<img srcset="https://c.example/4.jpg 1x, https://c.example/4@2x.jpg 2x">'
    )
    images = [e for e in elements(clean(body).html) if e.tag == "img"]
    assert [i.get("src") for i in images] == [
        "https://a.example/1.jpg",
        "https://b.example/2.jpg",
        "https://upload-images.jianshu.io/u/3.png",
        "https://c.example/4.jpg",
    ]
    assert images[0].get("alt") == "一张图" and images[0].get("referrerpolicy") == "no-referrer"
    assert all(set(i.keys()) <= {"src", "alt", "title", "width", "height", "referrerpolicy"} for i in images)


def test_every_url_is_absolute(clean):
    body = '<a href="/about/x.html">a</a><a href="rel/y">b</a><img src="//cdn.example/z.png"><a href="#top">c</a><video src="v.mp4?a=1&b=2" controls></video>'
    out = clean(body).html
    for element in elements(out):
        for attr in ("href", "src"):
            value = element.get(attr)
            if value is not None:
                assert re.match(r"https?://", value), value
    assert "https://example.org/about/x.html" in out
    assert "https://example.org/posts/x/rel/y" in out
    assert "https://cdn.example/z.png" in out
    assert "https://example.org/posts/x/v.mp4?a=1&amp;b=2" in out


def test_iframes_only_from_allowed_hosts(clean):
    out = clean('<iframe src="https://player.youku.com/embed/abc"></iframe><iframe src="https://evil.example/x"></iframe>').html
    assert "player.youku.com" in out and "evil.example" not in out


def test_empty_paragraphs_and_blank_runs_are_gone_but_pre_keeps_its_layout(clean):
    body = "<p></p><p> &nbsp; </p><p><br></p>\n\n\n\n<p>text</p>\n\n\n<pre>a\n\n\tb  c\n</pre>"
    out = clean(body).html
    assert "<p></p>" not in out and "<br>" not in out
    assert "\n\n" not in out.split("<pre>")[0]
    assert "<pre>a\n\n\tb  c\n</pre>" in out


def test_legacy_tags_unwrapped_text_kept(clean):
    out = clean('<p><font color="red"><font size="3" cms-style="strong-Bold">加粗</font></font><center>居中</center></p>').html
    assert "font" not in out and "center" not in out and "cms-style" not in out
    assert "加粗" in out and "居中" in out


def test_raw_ampersands_and_angle_brackets_are_escaped(clean):
    out = clean("<p>Optional<Int> && <源路径> a->b</p>").html
    assert "&amp;&amp;" in out
    assert "<Int>" not in out


def test_summary_text_has_no_markup_and_keeps_cjk(clean):
    result = clean("<p>\u3000\u3000第一段。</p><p>第二段&nbsp;继续。</p>")
    assert "<" not in result.text
    assert "第一段" in result.text and "第二段\u00a0继续" in result.text
    assert result.first_image is None


def test_xml_forbidden_characters_are_dropped(clean):
    out = clean("<p>a\x00b\x0bc\x1bd\ufffee</p><pre>x\ty\nz</pre>").html
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", out)
    assert "x\ty\nz" in out


def test_bleach_engine_parser_gives_the_same_tree_as_bleachs_own():
    """The cheaper input stream (feeds.sanitize._TagMemory) must not change a token.

    Random tag soup, half of it read in chunks of a few characters so that
    malformed tags, ungets and invalid code points straddle chunk boundaries.
    """
    import random

    from bleach import html5lib_shim
    from bleach._vendor.html5lib import _inputstream

    from feeds.policy import ALLOWED_TAGS, DROP_WITH_CONTENT
    from feeds.sanitize import _Parser

    tags = ALLOWED_TAGS | DROP_WITH_CONTENT
    stock = html5lib_shim.BleachHTMLParser(tags=tags, strip=True, consume_entities=False, namespaceHTMLElements=False)
    ours = _Parser(tags=tags, strip=True, consume_entities=False, namespaceHTMLElements=False)
    walker = html5lib_shim.getTreeWalker("etree")
    pieces = ["<", ">", "</", "/>", "<p", "<a href=x", " ", "\n", "\r\n", "\r", "'", '"', "=", "&", "&amp;", "&#", ";", "<!--", "-->",
              "<!", "?", "x", "<nottag", '<bad"attr', "a<b", '<p class="q"', "<script>", "</script>", "<svg>", "\x7f", "\ufdd0",
              "\U0001fffe", "中文", "<img src=x", "<br/>", "<textarea>", "\t", "\f", "<span", "<di", "v>", "<a<b>", "<x y=z <p>"]
    rnd = random.Random(5)
    default_chunk = _inputstream.HTMLUnicodeInputStream._defaultChunkSize
    try:
        for i in range(3000):
            text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 40)))
            _inputstream.HTMLUnicodeInputStream._defaultChunkSize = rnd.randint(1, 7) if i % 2 else default_chunk
            expected = list(walker(stock.parseFragment(text))), stock.errors
            assert (list(walker(ours.parseFragment(text))), ours.errors) == expected, text
    finally:
        _inputstream.HTMLUnicodeInputStream._defaultChunkSize = default_chunk


def test_references_to_characters_xml_forbids_do_not_fail_the_post(clean):
    # lxml (nh3 engine) reads &#1; as U+0001 but refuses to store it again:
    # tidying that text, a lazy src made of it or removing a neighbour used
    # to raise ValueError and fail the whole post
    body = (
        "<p>a  &#1;b&#x1b;c  &#0;d&#xFFFE;e</p><pre>x&#1;y</pre><p>t&#2;<script>s</script>u</p>"
        '<img src="loading.gif" data-src="/img/a&#x1c;.png"><p title="&#3;q">q</p>'
    )
    result = clean(body)
    for forbidden in "\x01\x02\x03\x1b\x1c\ufffe":
        assert forbidden not in result.html and forbidden not in result.text
    assert "a" in result.text and "q" in result.text and "<script" not in result.html


URL_STARTS = ["", "http://", "https://", "HTTP://", "//", " https://", "\x01http://"]
URL_PIECES = ["/", "?", "#", ";", ":", "@", "[", "]", "%20", "a", ".", "..", "=", " ", "\t", "\n", "\x00", "ä", "中", "\u3000", "javascript:"]


@settings(max_examples=1500, deadline=None)
@given(
    value=st.tuples(st.sampled_from(URL_STARTS), st.lists(st.sampled_from(URL_PIECES), max_size=8)).map(lambda t: t[0] + "".join(t[1])),
    base=st.sampled_from(["http://127.0.0.1:8000/posts/x/", "https://example.org/blog/a/b?q#f", "", "http://[::1/", "ftp://host/p"]),
)
@example(value="http://a?", base="http://b/")
@example(value="http://a/p#", base="http://b/")
@example(value="http://a/p;", base="http://b/")
@example(value="http://a/p?#f", base="http://b/")
@example(value="http:///p", base="http://b/")
@example(value="https://a\tb/", base="https://b/")
def test_absolutize_is_urljoin(value, base):
    # absolutize skips urljoin for URLs it would give back unchanged
    stripped = value.strip()
    if stripped.startswith("//"):
        expected = "https:" + stripped
    else:
        try:
            expected = urljoin(base, stripped)
        except ValueError:
            expected = stripped
    assert absolutize(value, base) == expected


def test_forbidden_reference_pattern_finds_exactly_the_references_xml_safe_would_empty():
    from feeds.sanitize_nh3 import _FORBIDDEN_REFERENCE
    from feeds.text import xml_safe

    for code in [*range(0x10000), 0x10000, 0x10FFFF, 0x110000, 0xFFFFFFF]:
        forbidden = code < 0x110000 and xml_safe(chr(code)) == ""
        for reference in (f"&#{code};", f"&#00{code}x", f"&#x{code:x};", f"&#X00{code:X}g"):
            assert bool(_FORBIDDEN_REFERENCE.search(reference)) == forbidden, reference


# ------------------------------------------ the one-pass serializer vs bleach's

def _bleach_serializer():
    from bleach import html5lib_shim

    return html5lib_shim.BleachHTMLSerializer(
        quote_attr_values="always", omit_optional_tags=False, escape_lt_in_attrs=True,
        resolve_entities=False, sanitize=False, alphabetical_attributes=False,
    )


def _start(name: str, **attrs: str) -> dict:
    return {"type": "StartTag", "name": name, "namespace": None, "data": {(None, k): v for k, v in attrs.items()}}


SERIALIZER_CASES = {
    "attribute quoting and escaping": [
        _start("a", href="https://x.test/?a=1&b=2&amp;c=3&lt;", title='say "hi"'),
        {"type": "Characters", "data": "a < b & c > d"},
        {"type": "EndTag", "name": "a", "namespace": None},
    ],
    "both quote kinds, an empty value, a known entity in a value": [
        _start("img", alt="it's \"both\"", title="", src="https://x.test/i.png?x=&copy;&bogus;"),
    ],
    "boolean attributes are minimized": [_start("video", controls="controls", src="https://x.test/v.mp4"), {"type": "EndTag", "name": "video", "namespace": None}],
    # bleach's serializer takes a lone "=" after an end tag for an attribute's "="
    # and runs the next piece through its ampersand fixer
    "a lone '=' after an end tag": [
        _start("p"), {"type": "EndTag", "name": "p", "namespace": None},
        {"type": "Characters", "data": "="}, {"type": "Characters", "data": "&amp;x &lt; & y"},
        {"type": "Entity", "name": "nbsp"}, {"type": "SpaceCharacters", "data": " \n"},
    ],
    "a lone '=' then a double quote": [
        {"type": "EndTag", "name": "b", "namespace": None}, {"type": "Characters", "data": "="},
        {"type": "Characters", "data": '"'}, {"type": "Characters", "data": "&amp;"}, _start("br"),
    ],
}


@pytest.mark.parametrize("tokens", SERIALIZER_CASES.values(), ids=SERIALIZER_CASES.keys())
def test_serializer_writes_what_bleachs_serializer_writes(tokens):
    from feeds.sanitize import serialize

    reference = _bleach_serializer()
    assert serialize(tokens, reference.escape_base_amp)[0] == reference.render(tokens)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["<", ">", "&", '"', "'", "=", " ", "\n", "a", "p", "img ", "src=", "href=", "</", "amp;", "lt;",
                                  "<b>", "</b>", "<a ", "x.png", "http://h/?a&b", "controls", "<video ", "<pre>", "&nbsp;", "é"]),
                max_size=40).map("".join))
def test_sanitized_tokens_serialize_as_bleach_would(body):
    from feeds.sanitize import _Pass, serialize

    from selectolax.lexbor import LexborHTMLParser

    sanitizer = get_sanitizer("bleach", Policy())
    reference = _bleach_serializer()
    on_html5lib = _Pass(sanitizer, BASE)
    on_html5lib.walk(sanitizer.parser.parseFragment(body))
    on_lexbor = _Pass(sanitizer, BASE)
    on_lexbor.walk_lexbor(LexborHTMLParser(body, is_fragment=True).root, "&#" in body)
    for run in (on_html5lib, on_lexbor):
        tokens = run.finish()
        assert serialize(tokens, reference.escape_base_amp)[0] == reference.render(tokens)


# ------------------------------------- lexbor's tree vs bleach's own parser's

def _bodies(folder):
    from pathlib import Path

    from feeds.collect import parse_post_bytes

    for path in sorted(Path(folder).rglob("*.md")):
        post, _ = parse_post_bytes(path.read_bytes(), path, path.name, str(path))
        if post is not None and post.body.strip():
            yield path.name, post.body


def _same_page(folder):
    """Both bleach engines make the same page of every post in the folder.

    lexbor hands over character references read (`{`), bleach's parser as
    written (`&#123;`): the markup is compared with references read.
    """
    import html

    policy = Policy(drop_selectors=(".appendQr_wrap",), placeholder_image_hosts=("picsum.photos",))
    lexbor, html5lib_parser = get_sanitizer("bleach", policy), get_sanitizer("bleach-html5lib", policy)
    count = 0
    for name, body in _bodies(folder):
        ours, theirs = lexbor.clean(body, BASE), html5lib_parser.clean(body, BASE)
        assert html.unescape(ours.html) == html.unescape(theirs.html), name
        assert (ours.text, ours.first_image, ours.dropped_images) == (theirs.text, theirs.first_image, theirs.dropped_images), name
        count += 1
    return count


def test_both_parsers_make_the_same_pages_of_the_example_posts():
    from conftest import REPO

    assert _same_page(REPO / "examples" / "posts") >= 10


def test_both_parsers_make_the_same_pages_of_the_corpus(corpus):
    assert _same_page(corpus) >= 30


@pytest.mark.parametrize(
    "body, shown",
    [
        # what a browser shows: the rest of the body is text after <plaintext>, <xmp> holds text
        ('<p>a</p><plaintext><p onclick="x()">b', '<p>a</p>&lt;p onclick="x()"&gt;b'),
        ("<xmp><b>x</b></xmp>", "&lt;b&gt;x&lt;/b&gt;"),
        # character references arrive read, and are written escaped where they must be
        ("<p>&#123;&lt;&amp;&nbsp;&#x4e2d;</p>", "<p>{&lt;&amp;\u00a0中</p>"),
        ('<a href="/x?a=1&amp;b=2">l</a>', '<a href="https://example.org/x?a=1&amp;b=2" rel="noopener noreferrer nofollow">l</a>'),
        # text that reads like a reference once its own references are read stays text
        ("<p>&amp;amp; &amp;lt;b&amp;gt; &amp;#123;</p>", "<p>&amp;amp; &amp;lt;b&amp;gt; &amp;#123;</p>"),
    ],
)
def test_lexbor_engine_shows_what_a_browser_shows(body, shown):
    assert get_sanitizer("bleach", Policy()).clean(body, BASE).html == shown
