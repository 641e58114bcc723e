"""`curation-assets review`: the gallery served on 127.0.0.1.

Routes: `/` the page; `api/gallery` the clips (built once, gzip-compressed once, rebuilt
on `?reload=1`); `api/clip/<video_id>?shard=` one clip's detail; `store/<key>` a preview,
frame or clip under the store location; `report/` the score report page and `report/<file>`
the charts beside it (<data_dir>/reports/); `POST api/recipe` writes the recipe with the
page's thresholds (context.py).

Only keys under the store's media folders are served, and a local key must resolve
(symlinks followed) inside the store folder: `..`, absolute paths, and links that lead out
are refused with 403. Requests must name this server as their Host (a web page elsewhere
cannot reach it through a rebound DNS name), and the recipe POST must be JSON.
"""

from __future__ import annotations

import gzip
import json
import mimetypes
import os
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from curation_assets.review.context import ReviewContext
from curation_assets.review.page import render_page

HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MEDIA_PREFIXES = ("frames", "previews", "clips", "accelerated")
MAX_BODY = 1 << 20
REPORT_FILES = (".html", ".png", ".md", ".yaml")  # what /report/ serves from <data_dir>/reports/


class Refused(Exception):
    """A path the server will not serve; the message says why."""


def check_key(key: str, location) -> str:
    """`key` when it names a file under the store's media folders, else Refused."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key or "://" in key:
        raise Refused(f"not a store key: {key!r}")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise Refused(f"not a store key (empty, '.' or '..' parts): {key!r}")
    if parts[0] not in MEDIA_PREFIXES:
        raise Refused(f"only {', '.join(MEDIA_PREFIXES)} are served from the store, not {parts[0]!r}")
    if location.is_local:
        root = os.path.realpath(location.root)
        real = os.path.realpath(location.path(key))
        if os.path.commonpath([root, real]) != root:
            raise Refused(f"{key!r} leads outside the store")
    return key


class ReviewApp:
    """What the handler serves, cached: the gallery data is built once per (re)load."""

    def __init__(self, context: ReviewContext, title: str):
        self.context = context
        self.title = title
        self._lock = threading.Lock()
        self._gallery: tuple[bytes, bytes] | None = None  # (json, gzip of it)

    def page(self) -> bytes:
        return render_page("server", self.title, "store/").encode("utf-8")

    def gallery(self, reload: bool = False) -> tuple[bytes, bytes]:
        with self._lock:
            if self._gallery is None or reload:
                self.context.refresh()  # runs since the server started: their recipe, their failures
                body = json.dumps(self.context.data(), separators=(",", ":"), allow_nan=False, default=str).encode()
                self._gallery = (body, gzip.compress(body, compresslevel=5))
            return self._gallery

    def clip(self, video_id: str, shard: str) -> dict:
        from curation_assets.review.clip_detail import clip_detail

        return clip_detail(self.context.store, video_id, shard)

    def report_file(self, name: str) -> bytes:
        """`report/<name>`: the score report page (the default) and the files beside it."""
        from curation_assets.outputs.report import REPORT_PAGE

        name = name or REPORT_PAGE
        if "/" in name or "\\" in name or name.startswith(".") or not name.endswith(REPORT_FILES):
            raise Refused(f"not a report file: {name!r}")
        path = self.context.reports_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no score report yet (it is built at the end of "
                                    "`curation-assets run`, or by materializing score_report)")
        return path.read_bytes()

    def media(self, key: str) -> bytes:
        location = self.context.store.location
        check_key(key, location)
        return location.read_bytes(key)


def make_handler(app: ReviewApp, allowed_hosts: set[str]):
    class Handler(BaseHTTPRequestHandler):
        server_version = "curation-review"

        def log_message(self, fmt, *args):  # quiet: the CLI prints what matters
            pass

        def _host_ok(self) -> bool:
            if self.headers.get("Host", "") in allowed_hosts:
                return True
            self._send(HTTPStatus.FORBIDDEN, b"unknown Host header: open the address the server printed",
                       "text/plain; charset=utf-8")
            return False

        def _send(self, status, body: bytes, ctype: str, extra: dict | None = None):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status, value) -> None:
            self._send(status, json.dumps(value, default=str).encode(), "application/json")

        def do_GET(self):  # noqa: N802 (http.server's naming)
            if not self._host_ok():
                return
            url = urlsplit(self.path)
            path, query = unquote(url.path), parse_qs(url.query)
            try:
                if path in ("/", "/index.html"):
                    self._send(HTTPStatus.OK, app.page(), "text/html; charset=utf-8", {"Cache-Control": "no-store"})
                elif path == "/api/gallery":
                    body, zipped = app.gallery(reload=query.get("reload") == ["1"])
                    if "gzip" in self.headers.get("Accept-Encoding", ""):
                        self._send(HTTPStatus.OK, zipped, "application/json", {"Content-Encoding": "gzip"})
                    else:
                        self._send(HTTPStatus.OK, body, "application/json")
                elif path.startswith("/api/clip/"):
                    shard = (query.get("shard") or [""])[0]
                    if not shard:
                        return self._json(HTTPStatus.BAD_REQUEST, {"error": "?shard= is required"})
                    self._json(HTTPStatus.OK, app.clip(path[len("/api/clip/"):], shard))
                elif path == "/report":  # relative chart links need the trailing slash
                    self._send(HTTPStatus.MOVED_PERMANENTLY, b"", "text/plain", {"Location": "/report/"})
                elif path.startswith("/report/"):
                    name = path[len("/report/"):]
                    ctype = mimetypes.guess_type(name or "x.html")[0] or "application/octet-stream"
                    if ctype.startswith("text/"):
                        ctype += "; charset=utf-8"
                    self._send(HTTPStatus.OK, app.report_file(name), ctype, {"Cache-Control": "no-store"})
                elif path.startswith("/store/"):
                    key = path[len("/store/"):]
                    data = app.media(key)
                    ctype = mimetypes.guess_type(key)[0] or "application/octet-stream"
                    self._send(HTTPStatus.OK, data, ctype, {"Cache-Control": "max-age=300"})
                else:
                    self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain; charset=utf-8")
            except Refused as exc:
                self._send(HTTPStatus.FORBIDDEN, f"refused: {exc}".encode(), "text/plain; charset=utf-8")
            except FileNotFoundError as exc:
                self._send(HTTPStatus.NOT_FOUND, f"missing: {exc}".encode(), "text/plain; charset=utf-8")
            except BrokenPipeError:
                pass  # the browser went away (scrolled past the card)
            except Exception as exc:  # one bad request must not stop the server; say what failed
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}".encode(),
                           "text/plain; charset=utf-8")

        do_HEAD = do_GET

        def do_POST(self):  # noqa: N802
            if not self._host_ok():
                return
            if unquote(urlsplit(self.path).path) != "/api/recipe":
                return self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain; charset=utf-8")
            if not self.headers.get("Content-Type", "").startswith("application/json"):
                return self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send JSON: {\"thresholds\": {...}}"})
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"})
            from curation_assets.review.thresholds import ThresholdError

            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict) or "thresholds" not in body:
                    raise ThresholdError('expected {"thresholds": {key: value, ...}}')
                self._json(HTTPStatus.OK, app.context.save_recipe(body["thresholds"]))
            except (ThresholdError, ValueError) as exc:
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})

    return Handler


def serve(context: ReviewContext, port: int = DEFAULT_PORT, title: str | None = None,
          ready=None, prewarm: bool = True) -> ThreadingHTTPServer:
    """Bind 127.0.0.1:`port` (0: any free port) and return the server (not yet serving:
    call serve_forever, in a thread or not). `ready(url)` is called once bound. `prewarm`:
    start reading the gallery data at once, in a thread, so that it is ready (or nearly) when
    the browser asks (at 100,000 clips the store read takes seconds: docs/review.md)."""
    app = ReviewApp(context, title or str(context.data_dir))
    server = ThreadingHTTPServer((HOST, port), None)
    bound = server.server_address[1]
    server.RequestHandlerClass = make_handler(app, {f"{HOST}:{bound}", f"localhost:{bound}"})
    server.daemon_threads = True
    server.app = app
    if prewarm:
        threading.Thread(target=_prewarm, args=(app,), name="review-prewarm", daemon=True).start()
    if ready is not None:
        ready(f"http://{HOST}:{bound}/")
    return server


def _prewarm(app: ReviewApp) -> None:
    try:
        app.gallery()
    except Exception:  # the page's own request builds it again and reports what fails
        pass


URL_ENV = "CURATION_REVIEW_URL"  # set by `curation-assets ui`, which serves the gallery beside the UI


def page_url(port: int = DEFAULT_PORT) -> str:
    return f"http://{HOST}:{port}/"


def review_url() -> str:
    """Where the gallery is served: what `ui` started, else `review`'s default address."""
    return os.environ.get(URL_ENV) or page_url()


__all__ = ["DEFAULT_PORT", "HOST", "URL_ENV", "Refused", "ReviewApp", "check_key", "page_url", "review_url", "serve"]
