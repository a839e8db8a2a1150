"""Serve a static index over HTTP the way a package index host should.

- ``<dir>/`` answers its ``index.html`` (a folder without one, or any unknown path,
  answers 404, never 403 and never a directory listing: uv moves on to the next index
  only after a 404);
- PEP 691 content negotiation on ``Accept``: ``application/vnd.pypi.simple.v1+json``
  gets the ``index.json`` beside the page, with that exact Content-Type;
- wheels are ``application/octet-stream``, ``.metadata`` files ``text/plain`` (they are
  RFC 822 text, installers read the bytes);
- hidden files (journal, temp files, lock) are never served;
- a redirect (``/dir`` -> ``/dir/``) names the normalized path, so ``/\\host/..`` can
  never become a Location that browsers read as another host; a path over MAX_PATH
  characters answers 414, one the filesystem refuses 404: never a dropped connection;
- files are streamed in 1 MiB blocks (memory stays flat under concurrent downloads of
  large wheels), and responses go out without Nagle's delay (TCP_NODELAY: pip and uv
  reuse connections, and a delayed ACK would cost ~40 ms a request).

``start_server(root)`` runs it in a thread for tests: ``with start_server(d) as srv:
srv.url``. ``wheelfactory serve DIR`` runs it in the foreground.
"""

from __future__ import annotations

import collections
import http.server
import logging
import os
import posixpath
import shutil
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, unquote, urlsplit

log = logging.getLogger(__name__)

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
JSON_LATEST = "application/vnd.pypi.simple.latest+json"
HTML_LATEST = "application/vnd.pypi.simple.latest+html"
TEXT_HTML = "text/html"

CONTENT_TYPES = {
    ".whl": "application/octet-stream",
    ".metadata": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}


def negotiate(accept: str | None) -> str:
    """Pick the form of a simple-index page for an Accept header: JSON_V1, HTML_V1 or text/html.

    Highest q wins; on a tie the order the client listed them. No Accept or nothing we
    know: text/html (installers fall back to HTML).
    """
    if not accept:
        return TEXT_HTML
    best: tuple[float, int, str] | None = None
    for pos, part in enumerate(accept.split(",")):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        q = 1.0
        for param in fields[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        chosen = {
            JSON_V1: JSON_V1,
            JSON_LATEST: JSON_V1,
            HTML_V1: HTML_V1,
            HTML_LATEST: HTML_V1,
            TEXT_HTML: TEXT_HTML,
            "text/*": TEXT_HTML,
            "*/*": TEXT_HTML,
        }.get(media)
        if chosen is None or q <= 0:
            continue
        rank = (q, -pos, chosen)
        if best is None or rank[:2] > best[:2]:
            best = rank
    return best[2] if best else TEXT_HTML


MAX_PATH = 2048  # characters of a request's path; longer: 414
_BLOCK = 1 << 20


class IndexRequestHandler(http.server.BaseHTTPRequestHandler):
    """GET/HEAD only; ``server.root`` is the folder served."""

    server_version = "wheelfactory-index"
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(body=False)

    def _parts(self) -> list[str] | None:
        """The request's path as clean segments; None when it may name nothing served."""
        raw = unquote(urlsplit(self.path).path)
        parts = [p for p in posixpath.normpath(raw).split("/") if p]
        if any(p.startswith(".") or "\\" in p or "\0" in p for p in parts):
            return None
        return parts

    def _resolve(self, parts: list[str]) -> tuple[Path | None, bool]:
        """(file to send or None for 404, whether the URL named a folder)."""
        root: Path = self.server.root  # type: ignore[attr-defined]
        target = root.joinpath(*parts) if parts else root
        try:
            target.resolve().relative_to(root.resolve())
            if target.is_dir():
                return target, True
            return (target if target.is_file() else None), False
        except (ValueError, OSError):  # outside the root, or a name the filesystem refuses
            return None, False

    def _answer(self, *, body: bool) -> None:
        url_path = urlsplit(self.path).path
        self.server.requests.append(url_path[:MAX_PATH])  # type: ignore[attr-defined]
        if len(self.path) > MAX_PATH:
            self._send_error(414)
            return
        parts = self._parts()
        target, is_dir = self._resolve(parts) if parts is not None else (None, False)
        if target is not None and is_dir:
            if not url_path.endswith("/"):
                # the normalized path, never the raw one: "/\\host/.." must not become a
                # Location browsers read as "//host"
                self._redirect("/" + "".join(f"{quote(p)}/" for p in parts or []))
                return
            form = negotiate(self.headers.get("Accept"))
            page = target / ("index.json" if form == JSON_V1 else "index.html")
            if form == JSON_V1 and not page.is_file():
                form, page = TEXT_HTML, target / "index.html"
            if not page.is_file():
                self._send_error(404)
                return
            ctype = {JSON_V1: JSON_V1, HTML_V1: HTML_V1}.get(form, "text/html; charset=utf-8")
            self._send_file(page, ctype, body=body, vary=True)
            return
        if target is None:
            self._send_error(404)
            return
        if target.name == "index.json":
            ctype = JSON_V1
        else:
            ctype = CONTENT_TYPES.get(target.suffix, "application/octet-stream")
        self._send_file(target, ctype, body=body, vary=False)

    def _send_file(self, path: Path, ctype: str, *, body: bool, vary: bool) -> None:
        try:
            fh = path.open("rb")
            size = os.fstat(fh.fileno()).st_size
        except OSError:
            self._send_error(404)
            return
        with fh:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(size))
            if vary:
                self.send_header("Vary", "Accept")
            self.send_header("Cache-Control", "no-cache" if vary else "max-age=600")
            self.end_headers()
            if body:
                shutil.copyfileobj(fh, self.wfile, _BLOCK)

    def _redirect(self, location: str) -> None:
        self.send_response(301)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_error(self, code: int) -> None:
        data = {404: b"404 Not Found\n", 414: b"414 URI Too Long\n"}.get(code, f"{code}\n".encode())
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a burst of new connections (pip and uv open
    # several) then waits out a 1 s SYN retry
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], root: Path) -> None:
        self.root = root
        # the latest paths asked for, in order (tests read them); bounded for serve_forever
        self.requests: collections.deque[str] = collections.deque(maxlen=10_000)
        super().__init__(address, IndexRequestHandler)


@dataclass
class IndexServer:
    """A running server; ``url`` ends in ``/``. Stop it with ``stop()`` or ``with``."""

    url: str
    _server: _Server
    _thread: threading.Thread | None

    @property
    def requests(self) -> collections.deque[str]:
        """The URL paths asked for so far (the latest 10,000), in order."""
        return self._server.requests

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> IndexServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def make_server(root: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 0) -> _Server:
    return _Server((host, port), Path(root))


def start_server(
    root: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 0
) -> IndexServer:
    """Serve ``root`` from a background thread; port 0 picks a free port."""
    server = make_server(root, host=host, port=port)
    thread = threading.Thread(target=server.serve_forever, name="wheelfactory-serve", daemon=True)
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    host_text = bound_host.decode() if isinstance(bound_host, bytes) else bound_host
    url = f"http://{host_text}:{bound_port}/"
    log.info("serving %s at %s", root, url)
    return IndexServer(url=url, _server=server, _thread=thread)


def serve_forever(root: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve in the foreground until interrupted."""
    server = make_server(root, host=host, port=port)
    bound_host, bound_port = server.server_address[:2]
    log.info("serving %s at http://%s:%s/ (Ctrl-C stops)", root, bound_host, bound_port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
