"""Every real post of ../shared/corpus comes through with correct metadata and a clean body.

Skips cleanly when the corpus is not there; never copies its text.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import html5lib
import pytest
from lxml import etree

from feeds.build import build_in_memory
from feeds.normalize import parse_date

from conftest import make_config

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def corpus_site(tmp_path_factory):
    from conftest import CORPUS

    if not CORPUS.is_dir():
        pytest.skip("shared corpus not present (../shared/corpus/posts)")
    tmp = tmp_path_factory.mktemp("corpus")
    config = make_config(CORPUS, tmp)
    state, files = build_in_memory(config)
    manifest_file = CORPUS.parent / "MANIFEST.tsv"
    manifest = {}
    if manifest_file.is_file():
        with open(manifest_file, encoding="utf-8") as handle:
            manifest = {row["path"]: row for row in csv.DictReader(handle, delimiter="\t")}
    return config, state, files, manifest


def test_every_corpus_post_is_published(corpus_site):
    from conftest import CORPUS

    _, state, _, _ = corpus_site
    posts = list(CORPUS.rglob("*.md"))
    assert len(state.catalog.articles) == len(posts)
    assert not [p for p in state.problems if p.severity == "error"]
    # the only warnings are the posts whose date really is unreadable
    for problem in state.problems:
        assert "Invalid Date" in problem.message, str(problem)


def test_metadata_matches_the_manifest(corpus_site):
    _, state, _, manifest = corpus_site
    if not manifest:
        pytest.skip("no MANIFEST.tsv beside the corpus")
    by_source = {a.source: a for a in state.catalog.articles}
    for path, row in manifest.items():
        article = by_source[path]
        features = set(row["features"].split(","))
        assert article.author == row["author"], path
        if row["date"] == "Invalid Date":
            assert article.undated, path
        else:
            assert article.date == parse_date(row["date"], SHANGHAI), path
            if re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row["date"]):
                naive = datetime.strptime(row["date"], "%Y-%m-%d %H:%M:%S")
                assert article.date == naive.replace(tzinfo=SHANGHAI), path
        assert len(article.categories) == 1 and len(article.categories[0]) == 3, path
        assert list(article.categories[0]) == path.split("/")[:3], path
        if "picsum" in features:
            assert not article.image or "picsum.photos" not in article.image, path
        if "original_title" in features:
            assert "_" not in article.title and "“" in article.title, path
        assert not re.search(r"[<>\x00-\x08\x0b\x0c\x0e-\x1f]", article.title), path
        assert article.title == " ".join(article.title.split()), path
        assert len(article.summary) <= 140, path
        assert article.id == path[: -len(".md")]


FORBIDDEN_TAGS = {"script", "style", "iframe", "object", "embed", "form", "input", "noscript", "template", "font"}


def check_clean_html(markup: str, where: str) -> None:
    assert "<!--" not in markup, where
    fragment = html5lib.parseFragment(markup, treebuilder="etree", namespaceHTMLElements=False)
    for element in fragment.iter():
        if not isinstance(element.tag, str):
            continue
        assert element.tag not in FORBIDDEN_TAGS, (where, element.tag)
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), (where, name)
            assert name not in ("hidden", "style", "class", "contenteditable"), (where, name)
            if name in ("href", "src", "poster"):
                assert re.match(r"(https?|mailto):", value), (where, name, value)
        if element.tag == "img":
            assert element.get("src"), where
        if element.tag == "p":
            text = "".join(element.itertext()).strip(" \n\t\u00a0\u3000")
            assert text or len(element), (where, "empty <p>")
    assert "appendQr" not in markup and "float:left" not in markup, where
    assert "\n\n" not in re.sub(r"<pre\b.*?</pre>", "<pre/>", markup, flags=re.S), where


def test_bodies_are_clean(corpus_site):
    _, state, _, manifest = corpus_site
    for article in state.catalog.articles:
        check_clean_html(article.body, article.source)
        features = set(manifest.get(article.source, {}).get("features", "").split(","))
        if "referrerpolicy" in features and "<img" in article.body:
            assert 'referrerpolicy="no-referrer"' in article.body, article.source
        if "hexo_brace_escape" in features and "<pre" in article.body:
            # &#123; is an HTML character reference: readers show "{"
            assert "&amp;#123;" not in article.body


def test_every_feed_parses_and_no_leak_in_any_output(corpus_site):
    _, state, files, _ = corpus_site
    for path, resource in files.items():
        body = resource.body
        if path.endswith(".json"):
            doc = json.loads(body)
            for item in doc["items"]:
                check_clean_html(item["content_html"], path)
        elif path.endswith(".xml"):
            etree.fromstring(body)
            if path != "/opml.xml":
                parsed = feedparser.parse(body)
                assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        else:
            text = body.decode("utf-8")
            assert "<script" not in text and "javascript:" not in text.lower(), path
            assert not re.search(r"\son\w+\s*=", text), path
    # the XML escapes the bodies: check them unescaped, straight from the documents
    atom = etree.fromstring(files["/atom.xml"].body)
    for content in atom.iter("{http://www.w3.org/2005/Atom}content"):
        check_clean_html(content.text or "", "/atom.xml")
