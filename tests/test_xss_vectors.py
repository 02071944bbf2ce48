"""Known XSS filter-evasion vectors against the body sanitizer.

Vectors live in tests/xss/vectors.toml (see the header there). Every vector
runs through every engine (`bleach`, `bleach-html5lib`, and `nh3` once feeds.sanitize_nh3 exists:
until then those cases skip) and the *output* is judged by an oracle that
parses it the way the article page will be parsed, rather than by searching
for substrings.

The oracle (`audit`)
--------------------
The output is placed where the page template puts it,
``<!DOCTYPE html><html><head></head><body><div class="body">OUTPUT</div>…``,
and parsed twice: by html5lib (the WHATWG algorithm browsers implement,
scripting enabled) and by libxml2 (lxml.html), as a second opinion on
parser differentials. For each parse it reports:

* any element outside SAFE_TAGS, or in the SVG/MathML namespace, and any
  comment or processing instruction (the usual mXSS carriers);
* any attribute not in SAFE_ATTRIBUTES for its element; in particular any
  attribute starting with ``on`` and any ``style`` attribute;
* any URL attribute (href, src, poster, cite, action, formaction, background,
  xlink:href, data, srcset, …) whose value, read as a browser reads it
  (C0/space trimmed, TAB/LF/CR removed), is not http:, https: or mailto:;
  a relative URL is reported too, because the sanitizer makes every URL
  absolute, so one left relative means a rewrite path was skipped;
* attributes on the page's own <html>/<head>/<body>/<div class="body">
  (e.g. a ``<body onload>`` merged into the real body) and elements in <head>;
* an <iframe> (allowed only by the "iframes" policy) whose src is not an
  https URL on an allowed host, or that lacks a sandbox attribute.

SAFE_TAGS and SAFE_ATTRIBUTES come from tests/xss/allowlist.toml, this
test's own copy of the intended allowlist, not imported from feeds.policy:
widening the package's allowlist must be a visible, reviewed change here too.

The text rule (script/style leakage)
------------------------------------
Text that was *code* in the input must not reappear as text of the output:
it would be visible junk at best, and a sign that a raw-text element was
unwrapped instead of removed at worst. "Code" is the content of every
<script> and <style> element (any namespace) in the html5lib parse of the
input as a browser would see it, with scripting on and off (the <noscript>
differential), plus the vector's ``forbid_text``. Such a string must not occur
in the concatenated text nodes of the output nor in CleanBody.text.
Text that was ordinary text in the input (``&lt;script&gt;alert(1)`` in a
<p>, the raw-text content of <xmp>/<noembed>, which a browser renders as
text) may appear: it is visible, escaped text, and harmless. Substring search
is used only for this rule, and only on text nodes of the parsed output.

Oracle self-test: every vector not marked ``benign`` must be reported by
the oracle when fed unsanitized, so a check that silently stopped working
(e.g. a namespace or attribute-name change in a parser) cannot turn these
tests into no-ops.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from urllib.parse import unquote

import lxml.html
import pytest

try:
    import html5lib
except ImportError:  # the copy bleach vendors is the same html5lib 1.1
    from bleach._vendor import html5lib

from feeds.policy import Policy, get_sanitizer, host_matches

VECTORS_FILE = Path(__file__).resolve().parent / "xss" / "vectors.toml"
BASE_URL = "https://source.example/blog/2021/post.html"  # the post's original link
IFRAME_HOSTS = ("www.youtube.com",)
POLICIES = {"default": Policy(), "iframes": Policy(iframe_hosts=IFRAME_HOSTS)}
ENGINES = ["bleach", "bleach-html5lib", "nh3"]

XHTML = "http://www.w3.org/1999/xhtml"
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})

ALLOWLIST_FILE = Path(__file__).resolve().parent / "xss" / "allowlist.toml"
with open(ALLOWLIST_FILE, "rb") as _handle:
    _ALLOWLIST = tomllib.load(_handle)
SAFE_TAGS = frozenset(_ALLOWLIST["tags"].split())
EMBED_TAGS = frozenset(_ALLOWLIST["embed_tags"].split())
PAGE_TAGS = frozenset({"html", "head", "body"})  # the template's own, checked separately
_GLOBAL_ATTRIBUTES = set(_ALLOWLIST["attributes"]["*"].split())
SAFE_ATTRIBUTES = {tag: set(names.split()) for tag, names in _ALLOWLIST["attributes"].items() if tag != "*"}
URL_ATTRIBUTES = frozenset(
    """href src poster cite action formaction background xlink:href data codebase longdesc usemap
    dynsrc lowsrc ping manifest icon profile archive classid srcset imagesrcset srcdoc to values from by""".split()
)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_C0_OR_SPACE = "".join(chr(c) for c in range(0x21))


def load_vectors() -> list[dict]:
    with open(VECTORS_FILE, "rb") as handle:
        vectors = tomllib.load(handle)["vector"]
    names = [v["name"] for v in vectors]
    assert len(names) == len(set(names)), "vector names must be unique"
    for v in vectors:
        assert re.fullmatch(r"[a-z0-9-]+", v["name"]), v["name"]
        assert v.get("policy", "default") in POLICIES, v["name"]
        assert set(v) <= {"name", "html", "policy", "forbid_text", "keep_text", "xfail", "xfail_engines", "benign"}, v["name"]
    return vectors


VECTORS = load_vectors()


def url_scheme(value: str) -> str | None:
    """The scheme a browser's URL parser would see, lower-cased; None if relative."""
    value = value.strip(_C0_OR_SPACE)
    value = re.sub(r"[\t\n\r]", "", value)
    match = _SCHEME.match(value)
    return match.group(1).lower() if match else None


def whatwg_host(url: str) -> str | None:
    """The host of an http(s) URL as a browser's URL parser finds it.

    Unlike urllib.parse, WHATWG URL parsing treats '\\' like '/' in special
    schemes, so 'https://a.example\\@b.example/' is host a.example.
    """
    url = re.sub(r"[\t\n\r]", "", url.strip(_C0_OR_SPACE))
    match = re.match(r"(?i)https?:[/\\]*", url)
    if not match:
        return None
    authority = re.split(r"[/\\?#]", url[match.end():], maxsplit=1)[0]
    host = re.sub(r":[0-9]*$", "", authority.rpartition("@")[2])
    return unquote(host).lower().rstrip(".") or None


def page_document(fragment: str) -> str:
    return f'<!DOCTYPE html><html><head></head><body><div class="body">{fragment}</div></body></html>'


# ------------------------------------------------------------------ parsing


def _local_name(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return None, tag


def _attr_name(name: str) -> str:
    ns, local = _local_name(name)
    if ns == "http://www.w3.org/1999/xlink":
        return "xlink:" + local
    if ns == "http://www.w3.org/XML/1998/namespace":
        return "xml:" + local
    if ns == "http://www.w3.org/2000/xmlns/":
        return "xmlns:" + local
    return local.lower()


def parse_html5lib(document: str, scripting: bool = True):
    return html5lib.parse(document, treebuilder="etree", namespaceHTMLElements=True, scripting=scripting)


def parse_lxml(document: str):
    return lxml.html.document_fromstring(document)


PARSERS = {"html5lib": parse_html5lib, "libxml2": parse_lxml}


def _text_nodes(root) -> str:
    parts = []
    for el in root.iter():
        if isinstance(el.tag, str) and el.text:
            parts.append(el.text)
        if el is not root and el.tail:
            parts.append(el.tail)
    return "".join(parts)


def _is_html(tag: str, parser: str) -> bool:
    ns, _ = _local_name(tag)
    return ns == XHTML if parser == "html5lib" else ns is None


def audit(fragment: str, policy_name: str = "default") -> list[str]:
    """Every reason the fragment is unsafe inside the article page, for both parsers."""
    problems: list[str] = []
    document = page_document(fragment)
    for parser, parse in PARSERS.items():
        root = parse(document)
        wrapper_seen = False
        for el in root.iter():
            if not isinstance(el.tag, str):
                problems.append(f"{parser}: comment or processing instruction {el.text!r}")
                continue
            ns, tag = _local_name(el.tag)
            tag = tag.lower()
            attrs = {_attr_name(k): v for k, v in el.attrib.items()}
            where = f"{parser}: <{tag}>"
            if not _is_html(el.tag, parser):
                problems.append(f"{where}: foreign (SVG/MathML) element")
                continue
            if tag in PAGE_TAGS:
                if attrs:
                    problems.append(f"{where}: attributes {attrs!r} on the page's own element")
                if tag == "head" and len(el):
                    problems.append(f"{where}: elements in <head>: {[c.tag for c in el]!r}")
                continue
            if tag == "div" and not wrapper_seen:  # the template's <div class="body">
                wrapper_seen = True
                if attrs != {"class": "body"}:
                    problems.append(f"{where}: attributes of the body wrapper changed: {attrs!r}")
                continue
            iframe_ok = tag in EMBED_TAGS and policy_name == "iframes"
            if tag not in SAFE_TAGS and not iframe_ok:
                problems.append(f"{where}: element not in the allowlist")
            allowed = _GLOBAL_ATTRIBUTES | SAFE_ATTRIBUTES.get(tag, set())
            for name, value in attrs.items():
                if name.startswith("on"):
                    problems.append(f"{where}: event handler {name}={value!r}")
                elif name == "style":
                    problems.append(f"{where}: style attribute {value!r}")
                elif name not in allowed:
                    problems.append(f"{where}: attribute not in the allowlist {name}={value!r}")
                if name in URL_ATTRIBUTES and url_scheme(value) not in SAFE_SCHEMES:
                    problems.append(f"{where}: URL attribute {name}={value!r} is not http(s)/mailto")
            if iframe_ok:
                src = attrs.get("src", "")
                host = whatwg_host(src)
                if url_scheme(src) != "https" or not host or not host_matches(host, IFRAME_HOSTS):
                    problems.append(f"{where}: iframe src {src!r} (host {host!r} for a browser) is not https on an allowed host")
                if "sandbox" not in attrs:
                    problems.append(f"{where}: iframe without sandbox")
        body = next(el for el in root.iter() if isinstance(el.tag, str) and _local_name(el.tag)[1].lower() == "body")
        if len(body) != 1 or (body.text or "").strip() or (body[0].tail or "").strip():
            problems.append(f"{parser}: the output escapes its <div class=\"body\"> container")
    return problems


def code_strings(html: str, forbid_text=()) -> set[str]:
    """Script/style contents of the input as browsers parse it, plus forbid_text."""
    found = set(forbid_text)
    for scripting in (True, False):
        root = parse_html5lib(page_document(html), scripting=scripting)
        for el in root.iter():
            if isinstance(el.tag, str) and _local_name(el.tag)[1].lower() in ("script", "style"):
                text = "".join(el.itertext()).strip()
                if len(text) >= 3:
                    found.add(text)
    return found


def output_text(fragment: str) -> str:
    return _text_nodes(parse_html5lib(page_document(fragment)))


def leaks(fragment: str, plain_text: str, codes: set[str]) -> list[str]:
    text = output_text(fragment)
    out = []
    for code in sorted(codes):
        if code in text:
            out.append(f"code text {code!r} leaked into the output's text nodes")
        if code in plain_text:
            out.append(f"code text {code!r} leaked into CleanBody.text")
    return out


# ------------------------------------------------------------------ engines


def _engine_unavailable(engine: str) -> str | None:
    try:
        get_sanitizer(engine, Policy())
    except (ImportError, ValueError) as exc:  # ModuleNotFoundError is an ImportError
        return f"sanitizer engine {engine!r} not available yet ({type(exc).__name__}: {exc})"
    return None


_UNAVAILABLE = {engine: _engine_unavailable(engine) for engine in ENGINES if engine != "bleach"}


def sanitizer(engine: str, policy_name: str):
    reason = _UNAVAILABLE.get(engine)
    if reason:
        pytest.skip(reason)
    return get_sanitizer(engine, POLICIES[policy_name])


def _cases():
    for engine in ENGINES:
        for vector in VECTORS:
            marks = []
            if vector.get("xfail") and engine in vector.get("xfail_engines", ENGINES):
                marks.append(pytest.mark.xfail(strict=True, reason=vector["xfail"]))
            yield pytest.param(engine, vector, id=f"{engine}-{vector['name']}", marks=marks)


# ------------------------------------------------------------------ tests


def test_enough_vectors():
    assert len(VECTORS) >= 80


@pytest.mark.parametrize(("engine", "vector"), list(_cases()))
def test_vector_is_neutralized(engine, vector):
    policy_name = vector.get("policy", "default")
    clean = sanitizer(engine, policy_name).clean(vector["html"], BASE_URL)

    problems = audit(clean.html, policy_name)
    problems += leaks(clean.html, clean.text, code_strings(vector["html"], vector.get("forbid_text", ())))
    if clean.first_image is not None and url_scheme(clean.first_image) not in ("http", "https"):
        problems.append(f"first_image {clean.first_image!r} is not http(s)")
    text = output_text(clean.html)
    for wanted in vector.get("keep_text", ()):
        if wanted not in text:
            problems.append(f"expected visible text {wanted!r} was removed")
    assert not problems, f"{vector['name']}: {vector['html']!r}\n-> {clean.html!r}\n" + "\n".join(problems)

    # Sanitizing the output again must not change its verdict (mutation check:
    # what the sanitizer emits must parse back to something it would accept).
    again = sanitizer(engine, policy_name).clean(clean.html, BASE_URL)
    assert not audit(again.html, policy_name), f"re-sanitized output of {vector['name']} is unsafe: {again.html!r}"


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_oracle_flags_raw_vector(vector):
    """The oracle must see danger in each raw (unsanitized) vector not marked benign."""
    raw = vector["html"]
    problems = audit(raw, vector.get("policy", "default"))
    problems += leaks(raw, "", code_strings(raw, vector.get("forbid_text", ())))
    if vector.get("benign"):
        return
    assert problems, f"the oracle finds nothing wrong with the raw vector {vector['name']}: {raw!r}; mark it benign or fix the oracle"


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ('<p onclick="x">a</p>', "event handler"),
        ('<a href="java&#x09;script:alert(1)">a</a>', "not http(s)/mailto"),
        ('<a href="/relative">a</a>', "not http(s)/mailto"),
        ('<img src="http://ok.example/a.png" style="x">', "style attribute"),
        ("<svg></svg>", "foreign"),
        ("<script>1</script>", "not in the allowlist"),
        ("<!-- c -->", "comment"),
        ('<body onload="x">', "page's own element"),
        ('<img srcset="http://ok.example/a.png 1x">', "attribute not in the allowlist"),
        ('<iframe src="https://evil.example/" sandbox></iframe>', "allowed host"),
        ('<iframe src="https://evil.example\\@www.youtube.com/" sandbox></iframe>', "allowed host"),
        ("</div><p>outside</p>", "escapes its"),
    ],
)
def test_oracle_detects(fragment, expected):
    policy_name = "iframes" if "iframe" in fragment else "default"
    assert any(expected in p for p in audit(fragment, policy_name)), audit(fragment, policy_name)


def test_oracle_text_rule():
    codes = code_strings("<p>alert(2)</p><script>alert(1)</script><xmp><b>x</b></xmp>")
    assert codes == {"alert(1)"}  # script content only: <p> and <xmp> text is visible text
    assert leaks("<p>alert(1)</p>", "", codes)
    assert not leaks("<p>alert(2)</p>", "", codes)
    assert leaks("<p>x</p>", "... alert(1)", codes)


@pytest.mark.parametrize(
    "url,host",
    [("https://a.example\\@www.youtube.com/x", "a.example"), ("https://u:p@www.youtube.com:443/x", "www.youtube.com"), ("https:\\\\A.example./", "a.example"), ("javascript:x", None)],
)
def test_whatwg_host(url, host):
    assert whatwg_host(url) == host


@pytest.mark.parametrize("value,scheme", [("  JAVA\tSCRIPT:x", "javascript"), ("\x01javascript:x", "javascript"), ("&#106;avascript:x", None), ("https://a/", "https"), ("//a/b", None)])
def test_url_scheme(value, scheme):
    assert url_scheme(value) == scheme
