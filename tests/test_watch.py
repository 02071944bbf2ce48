"""The builder's wake-up: a change under the source folder is noticed at once."""

import threading
import time

import pytest

from feeds.watch import ChangeSignal


def _later(seconds, action):
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_a_write_wakes_the_builder_long_before_the_interval(tmp_path):
    (tmp_path / "a").mkdir()
    signal = ChangeSignal(tmp_path)
    if not signal.active:
        pytest.skip("no inotify here: the builder falls back to scanning every interval")
    try:
        assert signal.wait(0.2) is False  # nothing changed: the full interval passes
        _later(0.1, lambda: (tmp_path / "a" / "new.md").write_text("x"))
        started = time.monotonic()
        assert signal.wait(10) is True
        assert time.monotonic() - started < 2
    finally:
        signal.close()


def test_folders_made_later_are_watched_too(tmp_path):
    signal = ChangeSignal(tmp_path)
    if not signal.active:
        pytest.skip("no inotify here")
    try:
        (tmp_path / "new-group").mkdir()
        assert signal.wait(5) is True  # the folder itself
        _later(0.1, lambda: (tmp_path / "new-group" / "post.md").write_text("x"))
        started = time.monotonic()
        assert signal.wait(10) is True
        assert time.monotonic() - started < 2
    finally:
        signal.close()


class _FakeSignal:
    """inotify that never fires: every wake-up is the backstop's."""

    active = True

    def __init__(self, waits, stop):
        self.waits, self.stop = waits, stop

    def wait(self, timeout):
        self.waits.append(timeout)
        if len(self.waits) >= 3:
            self.stop.set()
        return False

    def close(self):
        pass


@pytest.mark.parametrize("inotify", [True, False])
def test_a_slow_full_scan_is_not_repeated_every_interval_when_inotify_watches(tmp_path, monkeypatch, inotify):
    import feeds.builder as builder_module
    from feeds.builder import Builder

    from conftest import make_config, post_text, write_post

    source = tmp_path / "posts"
    write_post(source, "a/one.md", post_text(title="one", date="2021-04-01 10:00:00"))
    builder = Builder(make_config(source, tmp_path))
    real_scan = builder._scan_now

    def slow_scan():  # a site large enough that one look at every post takes 40 ms
        time.sleep(0.04)
        return real_scan()

    monkeypatch.setattr(builder, "_scan_now", slow_scan)
    stop, waits = threading.Event(), []
    fake = _FakeSignal(waits, stop)
    fake.active = inotify
    monkeypatch.setattr(builder_module.watch, "ChangeSignal", lambda source: fake)
    builder.run(stop, interval=0.5)
    assert waits[0] == 0.5  # nothing scanned yet
    if inotify:
        assert min(waits[1:]) >= 50 * 0.04  # at most a fiftieth of a core on scans nobody asked for
    else:
        assert waits[1:] == [0.5, 0.5]  # without inotify, scanning is the only way to see a change
