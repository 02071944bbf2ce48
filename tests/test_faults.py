"""Faults: killed builds, damaged caches, and a cache that must never be stale."""

from __future__ import annotations

import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from feeds.build import build_in_memory, plan_site, render_resources, run_pipeline, write_tree

from conftest import make_config, post_text, write_post


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write_config(tmp: Path, source: Path) -> Path:
    config = tmp / "config.toml"
    config.write_text(
        f'[site]\ntitle = "T"\nurl = "http://127.0.0.1:8000"\n[source]\ndir = "{source}"\n'
        f'[output]\ndir = "{tmp / "public"}"\n[build]\ncache_dir = "{tmp / "cache"}"\nworkers = 2\n',
        encoding="utf-8",
    )
    return config


def many_posts(source: Path, count: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    for i in range(count):
        group = rng.choice(["金融", "编程", "图片"])
        body = "".join(f"<p>段落 {i}-{j} " + "内容" * rng.randint(20, 200) + "</p>" for j in range(rng.randint(2, 8)))
        write_post(source, f"{group}/{i:04d}.md", post_text(title=f"post {i}", categories=(group, f"源{i % 4}", f"频道{i % 3}"), date=f"2021-{1 + i % 12:02d}-{1 + i % 28:02d} 10:00:00", body=body))


def test_sigkill_at_any_point_leaves_the_previous_output_complete(tmp_path):
    source = tmp_path / "posts"
    many_posts(source, 300)
    config = write_config(tmp_path, source)
    cmd = [sys.executable, "-m", "feeds", "build", "--config", str(config), "--no-cache"]
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    before = tree(tmp_path / "public")
    # change every post so that a new build has to write everything
    many_posts(source, 300, seed=1)
    reference = tmp_path / "reference"
    assert subprocess.run([*cmd, "--out", str(reference)], capture_output=True).returncode == 0
    new = tree(reference)
    kills = 0
    for delay in (0.05, 0.2, 0.4, 0.6, 0.9, 1.2, 1.6, 2.2):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        after = tree(tmp_path / "public")
        # killed before the switch: the old tree; after it: the whole new one
        assert after == before or after == new, f"killed after {delay}s: a mixed or partial tree"
    assert kills >= 1, "no build was still running when killed"
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    builds = [p for p in (tmp_path / ".public.builds").iterdir() if p.is_dir()]
    assert len(builds) <= 2, sorted(p.name for p in builds)  # killed builds' leftovers are pruned by the next build


@pytest.mark.parametrize("damage", [b"", b"garbage", b"\x80\x04\x95" + b"\x00" * 20, "truncate"])
def test_damaged_cache_is_detected_and_rebuilt(tmp_path, damage):
    source = tmp_path / "posts"
    many_posts(source, 12)
    config = make_config(source, tmp_path)
    state = run_pipeline(config)
    write_tree(config.output.dir, render_resources(config, state))
    (cache_file,) = list((tmp_path / "cache").glob("outcomes-*.pickle"))
    if damage == "truncate":
        cache_file.write_bytes(cache_file.read_bytes()[: cache_file.stat().st_size // 2])
    else:
        cache_file.write_bytes(damage)
    again = run_pipeline(config)
    assert any("cache" in p.message and p.severity == "warning" for p in again.problems)
    assert again.load.processed == 12
    _, cold = build_in_memory(config)
    assert {p: r.body for p, r in render_resources(config, again)} == {p: r.body for p, r in cold.items()}


def test_cache_from_other_settings_is_not_used(tmp_path):
    source = tmp_path / "posts"
    many_posts(source, 5)
    run_pipeline(make_config(source, tmp_path))
    other = make_config(source, tmp_path, feeds={"summary_chars": 20})
    state = run_pipeline(other)
    assert state.load.processed == 5
    assert all(len(a.summary) <= 20 for a in state.catalog.articles)


def test_cache_with_wrong_entries_is_rebuilt(tmp_path):
    source = tmp_path / "posts"
    many_posts(source, 5)
    config = make_config(source, tmp_path)
    run_pipeline(config)
    (cache_file,) = list((tmp_path / "cache").glob("outcomes-*.pickle"))
    data = pickle.loads(cache_file.read_bytes())
    data["fingerprint"] = "someone else's"
    cache_file.write_bytes(pickle.dumps(data))
    state = run_pipeline(config)
    assert state.load.processed == 5


def test_cache_is_never_stale(tmp_path):
    """Edit, rename, delete, touch and restore posts between builds: always equal to a cold build."""
    source = tmp_path / "posts"
    many_posts(source, 30)
    config = make_config(source, tmp_path, build={"workers": 1})
    rng = random.Random(7)

    def check():
        state = run_pipeline(config)
        warm = {p: r.body for p, r in render_resources(config, state)}
        _, cold = build_in_memory(config)  # no cache at all
        expected = {p: r.body for p, r in cold.items()}
        assert warm == expected
        # the written tree too: the spare folder is updated in place, so a
        # stale or leftover file would show here
        write_tree(config.output.dir, plan_site(config, state))
        written = {"/" + p.relative_to(config.output.dir).as_posix(): p.read_bytes() for p in config.output.dir.rglob("*") if p.is_file()}
        assert written == expected
        return state

    check()
    files = sorted(source.rglob("*.md"))
    for step in range(12):
        victim = rng.choice(files)
        action = step % 6
        if action == 0:  # edit, same size, mtime restored
            stat = victim.stat()
            text = victim.read_text(encoding="utf-8")
            victim.write_text(text.replace("内容", "内文", 1), encoding="utf-8")
            os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        elif action == 1:  # rename
            target = victim.with_name("renamed-" + victim.name)
            victim.rename(target)
            files[files.index(victim)] = target
        elif action == 2:  # delete
            victim.unlink()
            files.remove(victim)
        elif action == 3:  # touch only
            os.utime(victim)
        elif action == 4:  # new post
            new = source / "新" / f"n{step}.md"
            write_post(source, f"新/n{step}.md", post_text(title=f"new {step}", categories=("新", "源", "道")))
            files.append(new)
        else:  # swap the contents of two posts
            other = rng.choice([f for f in files if f != victim])
            a, b = victim.read_bytes(), other.read_bytes()
            victim.write_bytes(b)
            other.write_bytes(a)
        check()


def test_killed_build_leaves_no_worker_processes(tmp_path):
    source = tmp_path / "posts"
    many_posts(source, 400)
    config = write_config(tmp_path, source)
    proc = subprocess.Popen([sys.executable, "-m", "feeds", "build", "--config", str(config), "--no-cache"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def children() -> list[int]:
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as handle:
                        fields = handle.read().rsplit(")", 1)[1].split()
                    with open(f"/proc/{entry}/cmdline", "rb") as handle:
                        cmdline = handle.read()
                except OSError:
                    continue
                if str(config).encode() in cmdline or int(fields[1]) == proc.pid:
                    pids.append(int(entry))
        return [p for p in pids if p != proc.pid]

    workers: list[int] = []
    deadline = time.monotonic() + 20
    while not workers and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        workers = children()
    time.sleep(0.3)  # let the pool finish starting its workers
    workers = children() or workers
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not workers:
        pytest.skip("the build finished before its workers could be seen")
    def running(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/status", "rb") as handle:
                return b"(zombie)" not in handle.read()
        except OSError:
            return False

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(running(p) for p in workers):
        time.sleep(0.2)
    alive = [p for p in workers if running(p)]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)  # clean up what the test itself started
    assert not alive, f"workers outlived the killed build: {alive}"


def test_cache_key_covers_every_module_a_post_goes_through():
    """The cache is keyed by PROCESS_MODULES' source: a module they import but the list
    misses could change what a post becomes without invalidating the cache."""
    import ast

    from feeds import pipeline

    package = Path(pipeline.__file__).parent
    seen, todo = set(), list(pipeline.PROCESS_MODULES)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse((package / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                modules = [node.module] if node.module else [alias.name for alias in node.names]
                for module in modules:
                    candidate = module.split(".")[0] + ".py"
                    if (package / candidate).is_file():
                        todo.append(candidate)
    assert seen <= set(pipeline.PROCESS_MODULES), f"imported but not in PROCESS_MODULES: {sorted(seen - set(pipeline.PROCESS_MODULES))}"


def test_cache_key_covers_every_library_a_post_goes_through():
    """...and by the versions of PROCESS_LIBRARIES: a new version of a parser
    or sanitizer the process modules import can change what a post becomes."""
    import ast
    from importlib.metadata import packages_distributions

    from feeds import pipeline

    package = Path(pipeline.__file__).parent
    distributions = packages_distributions()
    used = set()
    for name in pipeline.PROCESS_MODULES:
        for node in ast.walk(ast.parse((package / name).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                used.update(distributions.get(module.split(".")[0], ()))
    assert used, "found no third-party imports at all"
    missing = {name.lower() for name in used} - {name.lower() for name in pipeline.PROCESS_LIBRARIES}
    assert not missing, f"imported by the process modules but not in PROCESS_LIBRARIES: {sorted(missing)}"


def test_the_library_versions_in_the_cache_key_are_the_installed_ones():
    """A new release of a parser must change the key: the fast lookup agrees with importlib.metadata."""
    from importlib.metadata import version

    from feeds import pipeline

    found = pipeline.installed_versions(pipeline.PROCESS_LIBRARIES + ("no-such-distribution-here",))
    assert {name: found[name] for name in pipeline.PROCESS_LIBRARIES} == {name: version(name) for name in pipeline.PROCESS_LIBRARIES}
    assert found["no-such-distribution-here"] == "absent"


def test_small_change_appends_to_the_cache_journal_and_a_torn_journal_is_recovered(tmp_path):
    source = tmp_path / "posts"
    many_posts(source, 20)
    config = make_config(source, tmp_path, build={"workers": 1})
    run_pipeline(config)
    (base,) = list((tmp_path / "cache").glob("outcomes-*.pickle"))
    before = base.stat()
    first = sorted(source.rglob("*.md"))[0]
    first.write_text(first.read_text(encoding="utf-8").replace("内容", "改过的内容", 1), encoding="utf-8")
    state = run_pipeline(config)
    assert state.load.processed == 1
    assert (base.stat().st_ino, base.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "the whole cache was rewritten for one post"
    (journal,) = list((tmp_path / "cache").glob("outcomes-*.journal"))
    first_frame = journal.stat().st_size
    assert 0 < first_frame < before.st_size / 4
    assert run_pipeline(config).load.processed == 0  # the journal is read back
    # a build killed while appending leaves a torn frame: reported, and only that post is made again
    journal.write_bytes(journal.read_bytes()[: first_frame - 7])
    again = run_pipeline(config)
    assert any("journal" in p.message and p.severity == "warning" for p in again.problems)
    assert again.load.processed == 1
    _, cold = build_in_memory(config)
    assert {p: r.body for p, r in render_resources(config, again)} == {p: r.body for p, r in cold.items()}


def test_stored_bodies_stay_few_files_and_little_dead_weight_over_many_edits(tmp_path):
    from feeds import pipeline

    source = tmp_path / "posts"
    many_posts(source, 24)
    config = make_config(source, tmp_path, build={"workers": 1})
    run_pipeline(config)
    body_dir = next((tmp_path / "cache").glob("bodies-*"))
    for edit in range(40):
        # each `feeds build` is a new process with a pack of its own: more
        # small packs than are kept apart, and old ones left all dead
        pipeline._stop_writing(str(body_dir))
        write_post(source, f"图片/{edit % 24:04d}.md", post_text(title=f"edit {edit}", categories=("图片",), date="2021-05-01 10:00:00", body=f"<p>第 {edit} 次修改。" + "字" * 3000 + "</p>"))
        state = run_pipeline(config)
        assert state.load.processed == 1
        packs = list(body_dir.glob("pack-*"))
        assert len(packs) <= pipeline.MAX_SMALL_PACKS + 1, f"edit {edit}: {len(packs)} packs"
        # every build renders from where its bodies are now, also the one
        # that moved bodies out of the small packs and removed those
        _, cold = build_in_memory(config)
        assert {p: r.body for p, r in render_resources(config, state)} == {p: r.body for p, r in cold.items()}, f"edit {edit}"
    live = sum(len(a.body.encode()) for a in build_in_memory(config)[0].load.articles)
    stored = sum(p.stat().st_size for p in body_dir.glob("pack-*"))
    assert stored < 3 * live + (1 << 16), (stored, live)


@pytest.mark.parametrize("damage", ["delete", "truncate", "flip"])
def test_damaged_stored_body_is_remade_never_published(tmp_path, damage):
    source = tmp_path / "posts"
    many_posts(source, 8)
    config = make_config(source, tmp_path, build={"workers": 1})
    run_pipeline(config)
    packs = sorted(p for p in (tmp_path / "cache").glob("bodies-*/pack-*") if p.is_file())
    assert len(packs) == 1, "the bodies one process makes are stored in one pack beside the cache"
    pack = packs[0]
    if damage == "delete":
        pack.unlink()
    elif damage == "truncate":
        pack.write_bytes(pack.read_bytes()[:-5])
    else:  # same size, one byte of the last body changed: only the checksum can tell
        data = bytearray(pack.read_bytes())
        data[-1] ^= 0x01
        pack.write_bytes(bytes(data))
    state = run_pipeline(config)
    if damage == "flip":
        # the size still matches, so the post comes from the cache; reading it must fail loudly
        with pytest.raises(OSError, match="damaged body"):
            dict(render_resources(config, state))
        state = run_pipeline(config)  # "build again"
        assert state.load.processed == 8, "the damaged pack is dropped with every body in it"
    elif damage == "truncate":
        assert state.load.processed == 1, "only the body cut off is made again"
    else:
        assert state.load.processed == 8
    _, cold = build_in_memory(config)
    assert {p: r.body for p, r in render_resources(config, state)} == {p: r.body for p, r in cold.items()}


@pytest.mark.parametrize("posts, workers", [(80, 2), (6, 1)], ids=["pool", "few-posts"])
def test_a_post_that_crashes_its_worker_costs_only_that_post(tmp_path, monkeypatch, posts, workers):
    # what a C parser crashing on a hostile body looks like to the build:
    # in a pool of workers, and in the one child that processes a few posts
    import feeds.pipeline as pipeline

    source = tmp_path / "posts"
    many_posts(source, posts)
    write_post(source, "编程/crash.md", post_text(title="crash", body="<p>CRASH-HERE</p>"))
    processing = pipeline.parse_post_bytes

    def crashing(raw, *args):
        if b"CRASH-HERE" in raw:
            import faulthandler

            faulthandler.disable()  # pytest's would print a traceback of this expected crash
            os.kill(os.getpid(), signal.SIGSEGV)
        return processing(raw, *args)

    monkeypatch.setattr(pipeline, "parse_post_bytes", crashing)
    config = make_config(source, tmp_path, build={"cache_dir": str(tmp_path / "cache"), "workers": workers})
    state = run_pipeline(config)
    titles = {article.title for article in state.catalog.articles}
    assert len(titles) == posts and "crash" not in titles
    [crash] = [problem for problem in state.problems if problem.path.endswith("crash.md")]
    assert crash.severity == "error" and "killed by SIGSEGV" in crash.message and "not published" in crash.message
    assert not [problem for problem in state.problems if problem.severity == "error" and problem is not crash]

    # not cached: once the post no longer crashes, the next build publishes it
    monkeypatch.setattr(pipeline, "parse_post_bytes", processing)
    state = run_pipeline(config)
    assert "crash" in {article.title for article in state.catalog.articles}
    assert not [problem for problem in state.problems if problem.severity == "error"]
