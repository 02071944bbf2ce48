"""WSGI apps served on 127.0.0.1 from a background thread (werkzeug)."""

from __future__ import annotations

import threading

from werkzeug.serving import WSGIRequestHandler, make_server


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


class ThreadedServer:
    """Binds an ephemeral port at once; the app can be set later.

    The port must be known before the site is built (it is the site URL),
    so the server starts with a placeholder and `app` is assigned after.
    """

    def __init__(self, app=None):
        self.app = app
        self._server = make_server("127.0.0.1", 0, self._dispatch, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"wsgi-{self.url}", daemon=True)
        self._thread.start()

    def _dispatch(self, environ, start_response):
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"not ready\n"]
        return self.app(environ, start_response)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class StaticPages:
    """A WSGI app serving {path: (body, content type)}; 404 otherwise. No CSP header."""

    def __init__(self):
        self.pages: dict[str, tuple[bytes, str]] = {}

    def __call__(self, environ, start_response):
        page = self.pages.get(environ.get("PATH_INFO", ""))
        if page is None:
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
            return [b"not found\n"]
        body, content_type = page
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")])
        return [body]
