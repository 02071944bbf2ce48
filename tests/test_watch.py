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
