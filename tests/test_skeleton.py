"""Skeletons: a template filled by joining strings gives exactly what Jinja renders."""

from __future__ import annotations

import pytest
from jinja2 import DictLoader, Environment, select_autoescape
from markupsafe import Markup

from conftest import make_config, post_text, write_post
from feeds.build import run_pipeline
from feeds.render.site import SiteRenderer
from feeds.render.skeleton import Skeletons

TEMPLATES = {
    "base.html": "<title>{% block title %}{% endblock %}</title>{{ head }}\n{% block main %}{% endblock %}",
    "page.html": (
        '{% extends "base.html" %}{% block title %}{{ title }}{% endblock %}'
        '{% block main %}<h1 title="{{ title }}">{{ title }}</h1>'
        "{% if author %} by <a href=\"{{ url }}\">{{ author }}</a>{% endif %}{{ none }}|{{ empty }}|{{ body }}{% endblock %}"
    ),
    "safe.html": "<p>{{ text|safe }}</p>",
    "upper.html": "<p>{{ text|upper }}</p>",
    "length.html": "<p>{{ text|length }}</p>",
}
ENV = Environment(loader=DictLoader(TEMPLATES), autoescape=select_autoescape(["html"]), keep_trailing_newline=True)


def both(name: str, values: dict) -> tuple[str, str, Skeletons]:
    template = ENV.get_template(name)
    skeletons = Skeletons(template, dict)
    return skeletons.render(values), template.render(**values), skeletons


TEXTS = ["plain", "Tom & Jerry <b>", "\"quoted\" 'single'", "中文 &amp; 標題", "\ue000 0 \ue001", "{{ title }}", ""]


@pytest.mark.parametrize("title", TEXTS)
@pytest.mark.parametrize("author", ["", "A. Author & co", None])
def test_a_page_has_the_bytes_jinja_gives_it(title, author):
    values = {"head": Markup("<link rel=x>"), "title": title, "author": author, "url": "/a?b=1&c=2", "none": None, "empty": "", "body": Markup("<p>x &amp; y</p>")}
    skeleton, jinja, _ = both("page.html", values)
    assert skeleton == jinja


def test_one_skeleton_serves_every_page_of_a_shape():
    template = ENV.get_template("page.html")
    skeletons = Skeletons(template, dict)
    for title in TEXTS[:-1]:
        values = {"head": Markup(""), "title": title, "author": "x", "url": "/", "none": None, "empty": "", "body": Markup("<br>")}
        assert skeletons.render(values) == template.render(**values)
    assert len(skeletons._cut) == 1 and None not in skeletons._cut.values()


@pytest.mark.parametrize("name", ["safe.html", "upper.html", "length.html"])
@pytest.mark.parametrize("text", ["a < b", "safe"])
def test_a_template_that_does_more_than_print_a_value_is_left_to_jinja(name, text):
    skeleton, jinja, skeletons = both(name, {"text": text})
    assert skeleton == jinja
    # whatever the first value held, the check caught the filter
    assert list(skeletons._cut.values()) == [None]
    assert skeletons.render({"text": "x & <y>"}) == ENV.get_template(name).render(text="x & <y>")


def test_values_must_keep_their_names():
    skeletons = Skeletons(ENV.get_template("safe.html"), dict)
    skeletons.render({"text": "a"})
    with pytest.raises(ValueError):
        skeletons.render({"other": ""})


def test_post_pages_of_every_shape_are_what_the_template_renders(tmp_path, monkeypatch):
    posts = tmp_path / "posts"
    write_post(posts, "plain.md", post_text(title="Plain"))
    write_post(posts, "odd.md", post_text(title="Tom & \"Jerry\" Optional<Int>", body="<p>a &amp; b</p>"))
    write_post(posts, "original.md", post_text(title="Linked", link="'https://example.com/a?x=1&y=2'"))
    write_post(posts, "no-author.md", post_text(title="Nobody's").replace("author: Tester\n", ""))
    write_post(posts, "undated.md", post_text(title="When", date="Invalid Date", tags="[t1, 't&2']"))
    config = make_config(posts, tmp_path)
    catalog = run_pipeline(config).catalog
    renderer = SiteRenderer(config, catalog)
    pages = [renderer.render_post_page(index) for index in range(len(catalog.articles))]
    assert len(renderer._post_pages._cut) >= 3  # with and without an author, with and without an original link
    assert None not in renderer._post_pages._cut.values()
    monkeypatch.setattr(Skeletons, "_make", lambda self, values: None)  # every page by Jinja
    by_jinja = SiteRenderer(config, catalog)
    assert pages == [by_jinja.render_post_page(index) for index in range(len(catalog.articles))]
    assert b"Tom &amp; &#34;Jerry&#34; Optional&lt;Int&gt;" in pages[[a.title for a in catalog.articles].index('Tom & "Jerry" Optional<Int>')][1]
