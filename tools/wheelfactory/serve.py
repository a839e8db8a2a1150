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
import errno
import http.server
import io
import logging
import os
import posixpath
import queue
import selectors
import shutil
import socket
import sys
import threading
import time
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
WORKERS = 32  # requests answered at once; more wait their turn, idle connections take none
MAX_CONNECTIONS = 4096  # open at once (and below the file limit); past it: 503 and closed
IDLE_TIMEOUT = 30.0  # seconds a connection may wait between requests, or stall within one


class IndexRequestHandler(http.server.BaseHTTPRequestHandler):
    """Answers ONE request (GET/HEAD only) of a kept-alive connection; ``server.root`` is
    the folder served. The connection outlives it: the server waits for the next request."""

    server_version = "wheelfactory-index"
    protocol_version = "HTTP/1.1"
    request: _Connection

    def setup(self) -> None:
        self.connection = self.request.sock
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.request.rfile
        self.wfile = self.request.wfile

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()

    def finish(self) -> None:
        try:
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: object) -> None:  # noqa: A002
        # a request that timed out, or one too malformed to answer: the connection is dropped
        log.warning("dropped connection from %s: %s", _peer(self.client_address), format % args)

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


@dataclass(eq=False)
class _Connection:
    """One client socket and its buffered reader, kept across the requests it sends."""

    sock: socket.socket
    address: tuple[str, int]
    rfile: io.BufferedReader
    wfile: io.BufferedWriter
    idle_since: float = 0.0

    def has_buffered_request(self) -> bool:
        """Whether the next request's bytes are already here (a pipelining client): the
        reader may hold them, and the selector would then never say the socket is readable."""
        timeout = self.sock.gettimeout()
        self.sock.settimeout(0)  # look, never wait
        try:
            return bool(self.rfile.peek(1))
        except OSError:
            return False
        finally:
            self.sock.settimeout(timeout)

    def close(self) -> None:
        for f in (self.wfile, self.rfile):
            try:
                f.close()
            except OSError:
                pass
        self.sock.close()


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What one server may hold: see _Server."""

    workers: int = WORKERS
    max_connections: int = MAX_CONNECTIONS
    idle_timeout: float = IDLE_TIMEOUT


class _Server:
    """One thread waits on every socket (selectors); a bounded pool answers requests.

    An idle connection costs a file descriptor and no thread: it is handed to a worker
    only once it has bytes to read, and goes back to the selector after each response.
    Connections idle for ``idle_timeout`` seconds are closed; a request whose bytes stop
    coming (or a client that stops reading) times out after ``idle_timeout`` too. Past
    ``max_connections`` (kept below the process's file limit) a new client gets a 503 and
    is closed. Every connection dropped is logged.
    """

    def __init__(self, address: tuple[str, int], root: Path, limits: Limits = Limits()) -> None:
        self.root = root
        # the latest paths asked for, in order (tests read them); bounded for serve_forever
        self.requests: collections.deque[str] = collections.deque(maxlen=10_000)
        self.idle_timeout = limits.idle_timeout
        # one descriptor per worker for the file it sends, a few for the server itself
        self.max_connections = min(limits.max_connections, _fd_limit() - limits.workers - 16)
        # socketserver's default backlog is 5: a burst of new connections (pip and uv open
        # several) then waits out a 1 s SYN retry
        self.socket = socket.create_server(address, backlog=128)
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()
        self.workers = limits.workers
        self._jobs: queue.SimpleQueue[_Connection | None] = queue.SimpleQueue()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._returned: queue.SimpleQueue[_Connection] = queue.SimpleQueue()
        self._open = 0  # connections accepted and not yet closed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()

    # -- the loop (one thread)

    def serve_forever(self) -> None:
        self._stopped.clear()
        for n in range(self.workers):
            # daemon threads, as ThreadingHTTPServer's were: Ctrl-C never waits on a client
            threading.Thread(target=self._work, name=f"wheelfactory-serve-{n}", daemon=True).start()
        sel = self._selector
        sel.register(self.socket, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        accept_paused_until = 0.0
        next_sweep = time.monotonic() + 1
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.5):
                    if key.fileobj is self.socket:
                        if not self._accept():
                            # out of file descriptors: the listening socket stays readable,
                            # so stop watching it a moment instead of spinning
                            sel.unregister(self.socket)
                            accept_paused_until = time.monotonic() + 0.5
                    elif key.fileobj is self._wake_r:
                        self._wake_r.recv(4096)
                        while not self._returned.empty():
                            conn = self._returned.get()
                            sel.register(conn.sock, selectors.EVENT_READ, conn)
                    else:
                        sel.unregister(key.fileobj)
                        self._jobs.put(key.data)
                now = time.monotonic()
                if accept_paused_until and now >= accept_paused_until:
                    sel.register(self.socket, selectors.EVENT_READ)
                    accept_paused_until = 0.0
                if now >= next_sweep:
                    self._close_idle(now)
                    next_sweep = now + 1
        finally:
            for key in list(sel.get_map().values()):
                sel.unregister(key.fileobj)
                if isinstance(key.data, _Connection):
                    self._close(key.data)
            for _ in range(self.workers):
                self._jobs.put(None)
            self._stopped.set()

    def _accept(self) -> bool:
        """Accept one client; False when the process is out of file descriptors."""
        try:
            sock, address = self.socket.accept()
        except BlockingIOError:
            return True
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                log.warning(
                    "cannot accept a connection: %s (%d open); raise the file limit"
                    " (ulimit -n) or lower --max-connections",
                    e.strerror, self._open,
                )  # fmt: skip
                return False
            log.warning("cannot accept a connection: %s", e)
            return True
        with self._lock:
            over = self._open >= self.max_connections
            if not over:
                self._open += 1
        if over:
            log.warning(
                "dropped connection from %s: %d connections open, the limit"
                " (--max-connections)", _peer(address), self.max_connections,
            )  # fmt: skip
            try:
                sock.setblocking(False)
                sock.send(_BUSY)  # pip and uv retry a 503
            except OSError:
                pass
            sock.close()
            return True
        sock.setblocking(True)
        conn = _Connection(
            sock, address, sock.makefile("rb"), sock.makefile("wb"), idle_since=time.monotonic()
        )
        self._selector.register(sock, selectors.EVENT_READ, conn)
        return True

    def _close_idle(self, now: float) -> None:
        for key in list(self._selector.get_map().values()):
            conn = key.data
            if isinstance(conn, _Connection) and now - conn.idle_since > self.idle_timeout:
                self._selector.unregister(conn.sock)
                log.info(
                    "closed idle connection from %s: no request for %.0f s",
                    _peer(conn.address), self.idle_timeout,
                )  # fmt: skip
                self._close(conn)

    # -- the workers

    def _work(self) -> None:
        while (conn := self._jobs.get()) is not None:
            self._answer(conn)

    def _answer(self, conn: _Connection) -> None:
        """Answer the requests waiting on ``conn``, then give it back to the loop."""
        try:
            conn.sock.settimeout(self.idle_timeout)
            while True:
                # the handler reads server.root and server.requests only
                handler = IndexRequestHandler(conn, conn.address, self)  # type: ignore[arg-type]
                if handler.close_connection:
                    self._close(conn)
                    return
                if not conn.has_buffered_request():
                    break
        except OSError as e:  # the client went away mid-response
            log.info("dropped connection from %s: %s", _peer(conn.address), e)
            self._close(conn)
            return
        if self._stop.is_set():
            self._close(conn)
            return
        conn.idle_since = time.monotonic()
        self._returned.put(conn)
        self._wake()

    def _close(self, conn: _Connection) -> None:
        conn.close()
        with self._lock:
            self._open -= 1

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except BlockingIOError:
            pass  # a wake-up is already pending

    # -- life cycle

    def shutdown(self) -> None:
        self._stop.set()
        self._wake()
        self._stopped.wait(timeout=10)

    def server_close(self) -> None:
        self.socket.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 24\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    b"503 too many connections"
)


def _peer(address: tuple[str, int] | object) -> str:
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)


def _fd_limit() -> int:
    """How many sockets this process may hold: its soft limit on open files."""
    if sys.platform == "win32":
        return 512  # select(), Windows' selector, takes at most 512 sockets
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else 1 << 30


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
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server.server_close()

    def __enter__(self) -> IndexServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_server(
    root: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    limits: Limits = Limits(),
) -> IndexServer:
    """Serve ``root`` from a background thread; port 0 picks a free port."""
    server = _Server((host, port), Path(root), limits)
    thread = threading.Thread(target=server.serve_forever, name="wheelfactory-serve", daemon=True)
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    host_text = bound_host.decode() if isinstance(bound_host, bytes) else bound_host
    url = f"http://{host_text}:{bound_port}/"
    log.info("serving %s at %s", root, url)
    return IndexServer(url=url, _server=server, _thread=thread)


def serve_forever(
    root: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    limits: Limits = Limits(),
) -> None:
    """Serve in the foreground until interrupted."""
    _raise_fd_limit(limits.max_connections + limits.workers + 16)
    server = _Server((host, port), Path(root), limits)
    bound_host, bound_port = server.server_address[:2]
    log.info(
        "serving %s at http://%s:%s/ (up to %d connections, %d at work, idle ones closed after"
        " %.0f s; Ctrl-C stops)", root, bound_host, bound_port, server.max_connections,
        limits.workers, limits.idle_timeout,
    )  # fmt: skip
    try:
        server.serve_forever()
    finally:
        server.server_close()


def _raise_fd_limit(wanted: int) -> None:
    """Lift this process's soft limit on open files toward ``wanted`` (never past the hard
    limit): many systems start at 1024, which would cap the connections below the default."""
    if sys.platform == "win32":
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError):
            pass  # the limit stays, and max_connections stays below it
