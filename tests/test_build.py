"""The static writer: atomic switch, unchanged files kept, failures keep the old tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from feeds.build import OutputError, build_in_memory, plan_site, render_resources, run_pipeline, write_tree
from feeds.model import Resource

from conftest import make_config, post_text, write_post


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def site(tmp_path):
    source = tmp_path / "posts"
    write_post(source, "a/b/one.md", post_text(title="one", date="2021-03-01 10:00:00"))
    write_post(source, "a/c/two.md", post_text(title="two", categories=("组", "另一个源", "频道"), date="2021-03-02 10:00:00"))
    config = make_config(source, tmp_path)
    return source, config


def build(config):
    state = run_pipeline(config)
    return write_tree(config.output.dir, plan_site(config, state))


def test_output_is_a_link_to_a_complete_build_equal_to_memory(site):
    _, config = site
    report = build(config)
    out = config.output.dir
    assert out.is_symlink() and out.resolve() == report.target
    _, files = build_in_memory(config)
    assert tree(out) == {p.lstrip("/"): r.body for p, r in files.items()}
    assert (out / "categories/组/源/频道/atom.xml").is_file()


def test_rebuild_without_changes_writes_nothing_and_keeps_mtimes(site):
    _, config = site
    build(config)
    feed = config.output.dir / "atom.xml"
    before = feed.stat().st_mtime_ns
    report = build(config)
    assert report.written == 0 and report.up_to_date and report.target == config.output.dir.resolve()
    assert feed.stat().st_mtime_ns == before


def test_one_changed_post_rewrites_only_what_changed(site):
    source, config = site
    build(config)
    old = tree(config.output.dir)
    write_post(source, "a/c/two.md", post_text(title="two, edited", categories=("组", "另一个源", "频道"), date="2021-03-02 10:00:00"))
    report = build(config)
    new = tree(config.output.dir)
    changed = {p for p in new if old.get(p) != new[p]}
    assert report.written == len(changed) and 0 < report.written < report.files
    assert "categories/组/源/频道/atom.xml" not in changed  # the other category's feed did not change


def test_deleted_post_disappears(site):
    source, config = site
    build(config)
    (source / "a/b/one.md").unlink()
    build(config)
    assert not any("one" in p for p in tree(config.output.dir) if p.startswith("posts/"))


def assert_only_complete_builds(builds):
    """No half-written folder is left behind: the published build and at most one spare."""
    folders = [p for p in builds.iterdir() if p.is_dir()]
    assert 1 <= len(folders) <= 2, folders
    for folder in folders:
        assert (builds / (folder.name + ".manifest.json")).is_file(), f"{folder.name} has no manifest: a partial build was left"


def test_failure_mid_build_keeps_previous_output(site):
    _, config = site
    build(config)
    before = tree(config.output.dir)

    def exploding():
        yield "/index.html", Resource(b"half", "text/html")
        raise KeyboardInterrupt  # as if the build was stopped here

    with pytest.raises(KeyboardInterrupt):
        write_tree(config.output.dir, exploding())
    assert tree(config.output.dir) == before
    assert_only_complete_builds(config.output.dir.parent / ".public.builds")


def test_full_disk_is_a_clear_error_and_keeps_previous(site, monkeypatch):
    import builtins
    import errno

    import feeds.build as build_module

    source, config = site
    build(config)
    before = tree(config.output.dir)
    write_post(source, "a/new.md", post_text(title="new", date="2021-04-01 10:00:00"))
    calls = {"n": 0}
    real_open = builtins.open

    def filling_open(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wxa"):
            calls["n"] += 1
            if calls["n"] > 3:
                raise OSError(errno.ENOSPC, "No space left on device", str(file))
        return real_open(file, mode, *args, **kwargs)

    import feeds.pipeline as pipeline_module

    real_write = os.write

    def filling_write(fd, data):  # pages and bodies are written through descriptors
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(build_module, "open", filling_open, raising=False)
    monkeypatch.setattr(pipeline_module, "open", filling_open, raising=False)
    monkeypatch.setattr(os, "write", filling_write)
    with pytest.raises(OutputError, match="No space left on device"):
        build(config)
    monkeypatch.undo()
    assert tree(config.output.dir) == before
    assert_only_complete_builds(config.output.dir.parent / ".public.builds")


def test_output_under_a_file_is_a_clear_error(site, tmp_path):
    _, config = site
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="not-a-folder"):
        state = run_pipeline(config)
        write_tree(blocker / "public", render_resources(config, state))


def test_plain_folder_in_the_way_is_moved_aside_not_deleted(site):
    _, config = site
    out = config.output.dir
    out.mkdir(parents=True)
    (out / "mine.txt").write_text("keep me")
    report = build(config)
    assert out.is_symlink()
    assert any("moved" in n for n in report.notes)
    kept = list((out.parent / ".public.builds").glob("previous-folder-*/mine.txt"))
    assert kept and kept[0].read_text() == "keep me"


def test_nothing_is_written_outside_the_output_folder(tmp_path):
    source = tmp_path / "posts"
    write_post(source, "x.md", post_text(title="t", categories=("..", "../../escape", "A/B"), extra_id="").replace("extra_id: \n", ""))
    write_post(source, "y.md", post_text(title="u", abbrlink="'../../../etc/evil'"))
    config = make_config(source, tmp_path)
    before = {p for p in tmp_path.rglob("*")}
    build(config)
    after = {p for p in tmp_path.rglob("*")}
    builds = tmp_path / ".public.builds"
    cache = tmp_path / "cache"
    for path in after - before:
        assert path == config.output.dir or builds in path.parents or path == builds or cache in path.parents or path == cache, path


@pytest.mark.parametrize("site_path", ["/a/../../escape.html", "/..", "/a/./b.html", "/a//b.html", "/posts/x/", "/a\x00b.html"])
def test_the_writer_refuses_a_path_that_could_leave_its_folder(tmp_path, site_path):
    # the last line of defence, behind the slugs: a renderer bug must not write elsewhere
    resources = [("/index.html", Resource(b"<p>home</p>", "text/html")), (site_path, Resource(b"x", "text/html"))]
    with pytest.raises(OutputError, match="unsafe path"):
        write_tree(tmp_path / "public", resources)
    assert not (tmp_path / "escape.html").exists()
    assert not (tmp_path / "public").exists()


def test_gzip_siblings_match_their_files(site):
    import gzip

    _, config = site
    state = run_pipeline(config)
    write_tree(config.output.dir, render_resources(config, state), gzip_siblings=True)
    out = config.output.dir
    atom = out / "atom.xml"
    assert gzip.decompress((out / "atom.xml.gz").read_bytes()) == atom.read_bytes()


def _many_pages(tmp_path: Path):
    from feeds.build import RENDER_FORK_MIN

    source = tmp_path / "posts"
    for i in range(RENDER_FORK_MIN + 20):  # a page each: enough to render in several processes
        write_post(source, f"p/{i:04d}.md", post_text(title=f"post {i}", categories=("编程", f"源{i % 3}"), date=f"2021-03-{1 + i % 28:02d} 10:{i % 60:02d}:00"))
    return make_config(source, tmp_path, build={"workers": 1})


def test_rendering_in_several_processes_writes_the_same_tree_as_one(tmp_path):
    config = _many_pages(tmp_path)
    state = run_pipeline(config)
    write_tree(tmp_path / "one", plan_site(config, state), workers=1)
    write_tree(tmp_path / "three", plan_site(config, state), workers=3)
    one, three = tree(tmp_path / "one"), tree(tmp_path / "three")
    assert len(one) > 256 and one == three


def _disk_full(job):
    raise OSError(28, "No space left on device", job[0])


def _dies(job):
    os._exit(9)  # gone without a word to the parent


@pytest.mark.parametrize(
    "where, failure, error, message",
    [
        ("child", _disk_full, OutputError, "No space left on device"),
        ("parent", _disk_full, OutputError, "No space left on device"),
        ("child", _dies, RuntimeError, r"render process ended without its results \(exit code 9\)"),
    ],
)
def test_a_failure_in_a_render_process_stops_the_build_and_keeps_the_output(tmp_path, monkeypatch, where, failure, error, message):
    import feeds.build as build_module

    config = _many_pages(tmp_path)
    out = tmp_path / "public"
    write_tree(out, plan_site(config, run_pipeline(config)), workers=2)
    before = tree(out)
    real = build_module._render_one
    parent = os.getpid()

    def failing(job, *args):
        if (os.getpid() == parent) == (where == "parent"):
            failure(job)
        return real(job, *args)

    monkeypatch.setattr(build_module, "_render_one", failing)
    for path in sorted((config.source.dir / "p").glob("*.md")):  # every page changes
        path.write_text(path.read_text(encoding="utf-8") + "\n<p>more</p>\n", encoding="utf-8")
    with pytest.raises(error, match=message):
        write_tree(out, plan_site(config, run_pipeline(config)), workers=2)
    assert tree(out) == before


def test_manifests_read_ahead_are_used_while_they_are_the_folder_s(site, monkeypatch):
    import feeds.build as build_module

    source, config = site
    build(config)
    build(config)  # a published build and a spare beside it
    write_post(source, "a/b/one.md", post_text(title="one, edited", date="2021-03-01 10:00:00"))
    ahead = build_module.OutputAhead(config.output.dir, False)
    state = run_pipeline(config, ahead=ahead)
    reads = []
    real = build_module._load_manifest
    monkeypatch.setattr(build_module, "_load_manifest", lambda folder: reads.append(folder) or real(folder))
    write_tree(config.output.dir, plan_site(config, state), ahead=ahead)
    assert reads == []  # both manifests came from the read-ahead
    _, files = build_in_memory(config)
    assert tree(config.output.dir) == {p.lstrip("/"): r.body for p, r in files.items()}


def test_manifests_read_ahead_are_not_used_once_another_build_switched(site):
    from feeds.build import OutputAhead

    source, config = site
    build(config)
    build(config)
    ahead = OutputAhead(config.output.dir, False)
    ahead.read()  # what this build knows of the folder...
    write_post(source, "a/b/one.md", post_text(title="one, edited by another build", date="2021-03-01 10:00:00"))
    build(config)  # ...stops being true: another build switched meanwhile
    write_post(source, "a/c/two.md", post_text(title="two, edited", categories=("组", "另一个源", "频道"), date="2021-03-02 10:00:00"))
    write_tree(config.output.dir, plan_site(config, run_pipeline(config)), ahead=ahead)
    _, files = build_in_memory(config)
    assert tree(config.output.dir) == {p.lstrip("/"): r.body for p, r in files.items()}
    assert_only_complete_builds(config.output.dir.parent / ".public.builds")


def test_compiled_templates_are_kept_in_the_build_cache_and_reused(site, monkeypatch):
    import jinja2

    from feeds.render.site import SiteRenderer

    _, config = site
    build(config)
    kept = list(config.build.cache_dir.glob("templates-*/*.cache"))
    assert kept, "no compiled template was kept"
    state, cold = build_in_memory(config)  # no cache at all: templates compiled from source

    def compile_again(*args, **kwargs):
        raise AssertionError("a template was compiled again")

    monkeypatch.setattr(jinja2.Environment, "compile", compile_again)
    renderer = SiteRenderer(config, state.catalog, cache_dir=config.build.cache_dir)
    pages = dict(renderer.render())
    assert {p: r.body for p, r in pages.items()} == {p: r.body for p, r in cold.items()}
