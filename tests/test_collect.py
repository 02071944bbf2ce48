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

        monkeypatch.setattr(collect._HANDLER, "load", exhausted)
    meta, _, _, _, problems = split_post(f"---\ntitle: {value}\n---\nbody", "p.md")
    assert meta is None
    assert [p.severity for p in problems] == ["error"] and problems[0].message.startswith("invalid YAML front matter")
