"""collect: front matter that PyYAML parses but cannot build is a problem report, never a traceback."""

from __future__ import annotations

import pytest

from feeds import collect
from feeds.collect import split_post


@pytest.mark.parametrize("value", ["!!int x", "!!bool maybe", "!!float y", "!!timestamp 2021-13-45", "deep"])
def test_front_matter_pyyaml_cannot_build_is_reported_not_raised(value, monkeypatch):
    if value == "deep":  # how deep exhausts the stack depends on the caller: stand in for it

        def exhausted(*args, **kwargs):
            raise RecursionError("maximum recursion depth exceeded")

        monkeypatch.setattr(collect.front_matter_yaml().handler, "load", exhausted)
    meta, _, _, _, problems = split_post(f"---\ntitle: {value}\n---\nbody", "p.md")
    assert meta is None
    assert [p.severity for p in problems] == ["error"] and problems[0].message.startswith("invalid YAML front matter")


def test_a_post_the_code_cannot_handle_is_reported_and_the_others_publish(tmp_path, monkeypatch):
    from conftest import make_config, post_text, write_post
    from feeds import pipeline
    from feeds.build import run_pipeline

    source = tmp_path / "posts"
    write_post(source, "good.md", post_text(title="good"))
    write_post(source, "trips.md", post_text(title="trips the code"))
    real = pipeline.normalize_meta

    def failing(post, settings, display):
        if post.rel == "trips.md":
            raise IndexError("an unforeseen shape")
        return real(post, settings, display)

    monkeypatch.setattr(pipeline, "normalize_meta", failing)
    state = run_pipeline(make_config(source, tmp_path))
    assert [a.title for a in state.catalog.articles] == ["good"]
    errors = [p for p in state.problems if p.severity == "error"]
    assert len(errors) == 1 and errors[0].path.endswith("trips.md") and "IndexError: an unforeseen shape" in errors[0].message
