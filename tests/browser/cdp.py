"""A minimal Chrome DevTools Protocol client over --remote-debugging-pipe.

No third-party packages: Chromium reads NUL-terminated JSON messages on its
file descriptor 3 and writes them on 4 (the transport Puppeteer uses), so
there is no debugging port and no WebSocket library. Sessions are "flat"
(Target.attachToTarget flatten=true): every command and event carries the
sessionId of the page it is about.

Used by tests/test_browser_probe.py; see `XssProbe` for what is recorded.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    "--disable-breakpad",
    "--mute-audio",
    "--metrics-recording-only",
    "--password-store=basic",
    "--use-mock-keychain",
    # Nothing but 127.0.0.1 resolves: a request that escapes the sanitizer
    # is still *seen* (Network.requestWillBeSent) but never leaves the host.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--no-proxy-server",
    # every frame in the page's own process, so one session sees all scripts
    "--disable-site-isolation-trials",
    "--disable-features=IsolateOrigins,site-per-process,Translate,MediaRouter,OptimizationHints,BackForwardCache,ProactivelySwapBrowsingInstance,RenderDocument,Prerender2,SpareRendererForSitePerProcess",
)


_TRAMPOLINE = "import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); os.dup2(r, 3); os.dup2(w, 4); os.close(r); os.close(w); os.execv(sys.argv[3], sys.argv[3:])"


class CDPError(RuntimeError):
    pass


def find_chromium() -> str | None:
    """$CHROMIUM_BIN, else the first Chromium/Chrome binary found."""
    explicit = os.environ.get("CHROMIUM_BIN")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in CANDIDATES:
        path = name if os.path.isabs(name) else shutil.which(name)
        if path and os.access(path, os.X_OK):
            return path
    return None


class Browser:
    """One headless Chromium with a fresh profile, driven over the pipe."""

    def __init__(self, binary: str, *, timeout: float = 15.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="feeds-xss-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Chromium wants the pipe on its fds 3 and 4: a tiny Python trampoline
        # moves them there and execs it (no preexec_fn: not thread-safe).
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_chrome_r, from_chrome_w)]
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        command = [sys.executable, "-I", "-S", "-c", _TRAMPOLINE, str(ends[0]), str(ends[1]), binary, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"]
        self.stderr = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr, pass_fds=ends, start_new_session=True)
        finally:
            for fd in ends:
                os.close(fd)
        self._lock = threading.Lock()
        self._next_id = 0
        self._pending: dict[int, dict] = {}
        self._done = threading.Condition()
        self.listeners: dict[str | None, list] = defaultdict(list)  # sessionId → [callback(method, params)]
        self._closed = False
        self._reader = threading.Thread(target=self._read_loop, name="cdp-reader", daemon=True)
        self._reader.start()
        self.version = self.send("Browser.getVersion")

    # ------------------------------------------------------------ transport

    def _read_loop(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._done:
                        self._pending[message["id"]] = message
                        self._done.notify_all()
                else:
                    for callback in list(self.listeners.get(message.get("sessionId"), ())):
                        callback(message["method"], message.get("params", {}))
        with self._done:
            self._closed = True
            self._done.notify_all()

    def post(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        """Send without waiting (safe from an event callback)."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            message = {"id": ident, "method": method, "params": params or {}}
            if session:
                message["sessionId"] = session
            data = json.dumps(message).encode() + b"\0"
            try:
                while data:
                    data = data[os.write(self._to_chrome, data) :]
            except OSError as exc:
                raise CDPError(f"Chromium is gone ({exc}); stderr:\n{self.stderr_text()}") from None
        return ident

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float | None = None) -> dict:
        ident = self.post(method, params, session)
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._done:
            while ident not in self._pending:
                left = deadline - time.monotonic()
                if self._closed:
                    raise CDPError(f"Chromium exited during {method}; stderr:\n{self.stderr_text()}")
                if left <= 0:
                    raise CDPError(f"no answer to {method} within {timeout or self.timeout}s")
                self._done.wait(left)
            message = self._pending.pop(ident)
        if "error" in message:
            raise CDPError(f"{method}: {message['error']}")
        return message.get("result", {})

    def stderr_text(self) -> str:
        try:
            self.stderr.seek(0)
            return self.stderr.read().decode("utf-8", "replace")[-3000:]
        except (OSError, ValueError):
            return ""

    # ------------------------------------------------------------ pages

    def new_page(self) -> str:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        return self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close", timeout=3)
                except CDPError:
                    pass
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()  # this Popen only: the Chromium we started
                    self.proc.wait(timeout=5)
        finally:
            for fd in (self._to_chrome, self._from_chrome):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.stderr.close()
            shutil.rmtree(self.profile, ignore_errors=True)


PROBE_SOURCE = Path(__file__).with_name("probe.js").read_text(encoding="utf-8")
AUDIT_SOURCE = Path(__file__).with_name("audit.js").read_text(encoding="utf-8")
OUR_SCRIPTS = ("__feeds_probe__.js", "__feeds_audit__.js")


class XssProbe:
    """One tab that loads pages and records every sign of script activity.

    For each page `load(url)` returns a dict of findings (empty lists = clean):

    * ``dialogs``: Page.javascriptDialogOpening (the dialog is dismissed);
    * ``scripts``: Debugger.scriptParsed for any script that is not ours —
      inline <script>, event-handler attributes, javascript: URLs and eval all
      compile a script, so this sees execution even when alert is not called
      (Chromium's own chrome-error:// pages, shown for an embed whose host
      does not resolve here, are not the page's and are ignored);
    * ``calls``: what the in-page probe (probe.js, injected with
      Page.addScriptToEvaluateOnNewDocument before any page script) saw:
      calls of alert/confirm/prompt/print/eval/Function/open/fetch, string
      timers, document.write, and CSP violation events; a page where the
      probe is missing is reported too;
    * ``requests``: Network.requestWillBeSent other than the page itself,
      images, <video>/<audio> media (allowed content, see the test), frames
      to the allowed embed hosts, and the browser's own /favicon.ico;
    * ``audit``: audit.js run on the *browser's* DOM after load: event-handler
      attributes, non-http(s) URLs, script/base/meta-refresh/object elements,
      and elements of the article body outside the allowlist — latent XSS
      that would need a click to fire;
    * ``navigations``: the main frame left the page (meta refresh, location=).
    """

    def __init__(self, browser: Browser, *, allowed_types=("Image", "Media"), fresh_document: bool = False):
        self.browser = browser
        # about:blank between pages: stricter isolation of one page's events
        # from the next, ~0.1 s a page. Without it, anything that fires after
        # a page settled is blamed on the next page: still a failure.
        self.fresh_document = fresh_document
        self.allowed_types = set(allowed_types)
        self.session = browser.new_page()
        self._events: list[tuple[str, dict]] = []
        self._events_lock = threading.Lock()
        self._load = threading.Event()
        browser.listeners[self.session].append(self._on_event)
        for method in ("Page.enable", "Network.enable", "Debugger.enable"):
            browser.send(method, session=self.session)
        browser.send("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE_SOURCE}, session=self.session)
        browser.send("Network.setCacheDisabled", {"cacheDisabled": True}, session=self.session)
        self.main_frame = browser.send("Page.getFrameTree", session=self.session)["frameTree"]["frame"]["id"]

    def _on_event(self, method: str, params: dict) -> None:
        if method == "Page.javascriptDialogOpening":
            self.browser.post("Page.handleJavaScriptDialog", {"accept": False}, self.session)
        if method == "Page.loadEventFired":
            self._load.set()
        with self._events_lock:
            self._events.append((method, params))

    def _take_events(self) -> list[tuple[str, dict]]:
        with self._events_lock:
            events, self._events = self._events, []
        return events

    def _navigate(self, url: str, timeout: float, attempts: int = 2) -> None:
        # a busy machine can starve the browser past the timeout once; a page
        # that never loads fails every attempt
        for attempt in range(1, attempts + 1):
            self._load.clear()
            result = self.browser.send("Page.navigate", {"url": url}, session=self.session)
            if result.get("errorText"):
                raise CDPError(f"navigating to {url}: {result['errorText']}")
            if self._load.wait(timeout):
                return
        raise CDPError(f"{url}: no load event within {timeout}s, {attempts} times")

    def _settle(self, quiet: float = 0.04, limit: float = 1.5) -> None:
        """Wait until no request has been in flight for `quiet` seconds."""
        deadline = time.monotonic() + limit
        in_flight: set[str] = set()
        seen = 0
        last_change = time.monotonic()
        while time.monotonic() < deadline:
            with self._events_lock:
                events = self._events[seen:]
                seen = len(self._events)
            for method, params in events:
                if method == "Network.requestWillBeSent":
                    in_flight.add(params["requestId"])
                    last_change = time.monotonic()
                elif method in ("Network.loadingFinished", "Network.loadingFailed"):
                    in_flight.discard(params["requestId"])
                    last_change = time.monotonic()
            if not in_flight and time.monotonic() - last_change >= quiet:
                return
            time.sleep(0.01)

    def load(self, url: str, *, allowed_tags, frame_hosts=(), timeout: float = 10.0) -> dict:
        """Load `url` and return the findings; `allowed_tags` may appear in the
        article body, iframes only to `frame_hosts` (over https)."""
        if self.fresh_document:
            self._navigate("about:blank", timeout)
        self._take_events()
        self._navigate(url, timeout)
        self._settle()
        audit = self.browser.send(
            "Runtime.evaluate",
            {"expression": f"({AUDIT_SOURCE})({json.dumps(sorted(allowed_tags))}, {json.dumps(list(frame_hosts))})\n//# sourceURL=__feeds_audit__.js", "returnByValue": True},
            session=self.session,
        )
        if "exceptionDetails" in audit:
            raise CDPError(f"audit.js failed on {url}: {audit['exceptionDetails']}")
        state = audit["result"]["value"]
        self._settle(quiet=0.02, limit=0.5)  # events the audit's synthetic hover/focus caused
        events = self._take_events()
        return self._findings(url, events, state, tuple(frame_hosts))

    def _findings(self, url: str, events, state: dict, frame_hosts: tuple[str, ...]) -> dict:
        findings = {"dialogs": [], "scripts": [], "requests": [], "navigations": [], "calls": state["calls"], "audit": state["audit"]}
        page_requested = False
        for method, params in events:
            if method == "Page.frameNavigated" and not params["frame"].get("parentId"):
                if params["frame"]["url"] != url:
                    findings["navigations"].append(params["frame"]["url"])
            elif method == "Page.javascriptDialogOpening":
                findings["dialogs"].append(f"{params.get('type')}: {params.get('message')!r}")
            elif method == "Debugger.scriptParsed":
                # chrome-error:// is Chromium's own network-error page (an embed
                # whose host does not resolve here), not content of the page
                if params.get("url") not in OUR_SCRIPTS and not params.get("url", "").startswith("chrome-error://"):
                    findings["scripts"].append(f"script compiled: url={params.get('url')!r} lines {params.get('startLine')}-{params.get('endLine')} length {params.get('length')}")
            elif method == "Network.requestWillBeSent":
                kind = params.get("type", "Other")
                target = params["request"]["url"]
                if kind == "Document" and target == url and params.get("frameId") == self.main_frame and not page_requested:
                    page_requested = True
                    continue
                if kind in self.allowed_types and target.startswith(("http://", "https://", "data:")):
                    continue
                if kind == "Document" and params.get("frameId") != self.main_frame and self._allowed_frame(target, frame_hosts):
                    continue
                if kind == "Other" and _is_loopback_favicon(target, url):
                    continue  # the browser's own, not caused by the page's content
                findings["requests"].append(f"{kind} {target}")
        return findings

    @staticmethod
    def _allowed_frame(target: str, frame_hosts: tuple[str, ...]) -> bool:
        """An embed the policy allows, judged on the URL as the browser parsed it."""
        parts = urlsplit(target)
        host = (parts.hostname or "").lower()
        return parts.scheme == "https" and any(host == h or host.endswith("." + h) for h in frame_hosts)


def _is_loopback_favicon(target: str, url: str) -> bool:
    """The browser's own favicon fetch for a page of the test servers: for this
    page, or a late one for the page loaded before it (another server's port)."""
    asked, page = urlsplit(target), urlsplit(url)
    return asked.path == "/favicon.ico" and not asked.query and asked.scheme == page.scheme and asked.hostname == page.hostname == "127.0.0.1"


def clean(findings: dict) -> bool:
    return not any(findings[k] for k in ("dialogs", "scripts", "requests", "navigations", "calls", "audit"))
