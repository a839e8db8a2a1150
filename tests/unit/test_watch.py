"""watch against a real HTTP server on 127.0.0.1 (a thread) serving PyPI JSON, PEP 691 JSON
and HTML pages, including flaky and always-failing servers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from wheelfactory import cli, releases
from wheelfactory.errors import NetworkError
from wheelfactory.watch import (
    Fetcher,
    Observation,
    backends_to_probe,
    builds_from_filenames,
    observe,
    parse_pypi,
    parse_simple_page,
    update_table,
)

ROOT = Path(__file__).resolve().parents[2]
ATTN = ROOT / "tests" / "fixtures" / "plan" / "attn.toml"

TABLE = """
table-version = 1

[[release]]
version = "2.13.0"
pythons = ["3.12", "3.13"]
pypi-cuda = "13.0"

[[release.variant]]
cuda = "12.6"
platforms = ["linux-x86_64", "windows-amd64"]

[[release.variant]]
cuda = "13.0"
platforms = ["linux-x86_64", "linux-aarch64", "windows-amd64"]

[[release]]
version = "2.14.0"
pythons = ["3.12", "3.13"]
pypi-cuda = "13.0"

[[release.variant]]
cuda = "13.0"
platforms = ["linux-x86_64", "linux-aarch64", "windows-amd64"]
"""

PLAT = {
    "linux-x86_64": "manylinux_2_28_x86_64",
    "linux-aarch64": "manylinux_2_28_aarch64",
    "windows-amd64": "win_amd64",
}


def wheel(version: str, cuda: str | None, python: str, platform: str) -> str:
    local = f"+{cuda}" if cuda else ""
    cp = "cp" + python.replace(".", "").rstrip("t")
    abi = cp + ("t" if python.endswith("t") else "")
    return f"torch-{version}{local}-{cp}-{abi}-{PLAT[platform]}.whl"


ALL = tuple(PLAT)
# What "PyTorch" publishes in this fake world.
INDEX = {
    "cu126": [
        wheel("2.13.0", "cu126", py, p)
        for py in ("3.12", "3.13")
        for p in ("linux-x86_64", "windows-amd64")
    ],
    "cu130": [
        wheel(v, "cu130", py, p)
        for v in ("2.13.0", "2.14.0", "2.14.1", "2.15.0")
        for py in ("3.12", "3.13")
        for p in ALL
    ]
    + [wheel("2.15.0", "cu130", "3.15t", p) for p in ALL]
    + ["torch-2.15.0rc1+cu130-cp312-cp312-manylinux_2_28_x86_64.whl"],
    "cu134": [
        wheel("2.15.0", "cu134", py, p)
        for py in ("3.12", "3.13", "3.15t")
        for p in ("linux-x86_64", "linux-aarch64")
    ],
}
PYPI = {
    "info": {"name": "torch"},
    "releases": {
        v: [
            {"filename": wheel(v, None, py, p), "upload_time_iso_8601": date, "yanked": False}
            for py in pys
            for p in ALL
        ]
        for v, date, pys in (
            ("2.13.0", "2026-07-08T17:00:00.000000Z", ("3.12", "3.13")),
            ("2.14.0", "2026-09-02T17:00:00.000000Z", ("3.12", "3.13")),
            ("2.14.1", "2026-09-30T17:00:00.000000Z", ("3.12", "3.13")),
            ("2.15.0rc1", "2026-10-01T17:00:00.000000Z", ("3.12",)),
            ("2.15.0", "2026-10-28T17:00:00.000000Z", ("3.12", "3.13", "3.15t")),
            ("1.0.0", "2018-12-07T17:00:00.000000Z", ("3.12",)),
        )
    },
}


def html_page(files: list[str]) -> bytes:
    links = "".join(f'<a href="/whl/{f.replace("+", "%2B")}#sha256=00">{f}</a><br/>' for f in files)
    return f"<!DOCTYPE html><html><body><h1>Links for torch</h1>{links}</body></html>".encode()


class Server:
    """Routes -> (status, content type, body); ``fail_first`` 503s before answering."""

    def __init__(self, *, fail_first: int = 0, always_fail: bool = False) -> None:
        self.fail_first, self.always_fail, self.requests = fail_first, always_fail, 0
        routes: dict[str, tuple[str, bytes]] = {
            "/pypi/torch/json": ("application/json", json.dumps(PYPI).encode())
        }
        for tag, files in INDEX.items():
            if tag == "cu126":  # HTML
                routes[f"/whl/{tag}/torch/"] = ("text/html", html_page(files))
            else:  # PEP 691 JSON
                body = {
                    "meta": {"api-version": "1.1"},
                    "name": "torch",
                    "files": [{"filename": f, "url": f, "hashes": {}} for f in files],
                }
                routes[f"/whl/{tag}/torch/"] = (
                    "application/vnd.pypi.simple.v1+json",
                    json.dumps(body).encode(),
                )
        self.routes = routes
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.requests += 1
                if outer.always_fail or outer.requests <= outer.fail_first:
                    self.send_error(503 if not outer.always_fail else 500)
                    return
                if self.path not in outer.routes:
                    self.send_error(404)
                    return
                ctype, body = outer.routes[self.path]
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Server:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


FAST = Fetcher(tries=3, backoff=0.01, timeout=5)


@pytest.fixture
def table_file(tmp_path: Path) -> Path:
    path = tmp_path / "torch-releases.toml"
    releases.dump(releases.parse(TABLE), path)
    return path


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "COMMANDS", {"watch": "main_watch"})
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_watch(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    server: Server,
    table_file: Path,
    *recipes: Path,
    options: tuple[str, ...] = (),
) -> tuple[int, str, str]:
    """``wheelfactory watch RECIPES --table T OPTIONS`` with ``server`` as PyPI and as
    PyTorch's index."""
    return run_cli(
        monkeypatch, capsys, "watch", *map(str, recipes), "--table", str(table_file),
        "--pypi-url", server.url, "--pytorch-index-url", server.url, *options,
    )  # fmt: skip


def test_parsers() -> None:
    files = [
        wheel("2.9.0", "cu128", "3.12", "linux-x86_64"),
        "torch-2.9.0+cpu-cp312-cp312-win_amd64.whl",
        "README",
    ]
    assert parse_simple_page("text/html", html_page(files)) == files
    builds = builds_from_filenames(
        [
            *files,
            wheel("2.9.0", "cu128", "3.14t", "linux-aarch64"),
            "torch-2.9.0+rocm6.4-cp312-cp312-manylinux_2_28_x86_64.whl",
        ]
    )
    assert builds == {
        "2.9.0": {("12.8", "linux-x86_64", "3.12"), ("12.8", "linux-aarch64", "3.14t")}
    }
    pypi = parse_pypi(PYPI)
    assert sorted(pypi) == ["1.0.0", "2.13.0", "2.14.0", "2.14.1", "2.15.0"]
    assert (
        pypi["2.15.0"].pythons == ("3.12", "3.13", "3.15t")
        and pypi["2.15.0"].released == "2026-10-28"
    )
    table = releases.parse(TABLE)
    assert backends_to_probe(table) == (
        "cu126",
        "cu130",
        "cu131",
        "cu132",
        "cu133",
        "cu134",
        "cu140",
    )


def test_observe_and_update(table_file: Path) -> None:
    table = releases.load(table_file)
    with Server() as srv:
        obs = observe(table, pypi_url=srv.url, pytorch_url=srv.url, fetcher=FAST)
    assert obs.found == ("cu126", "cu130", "cu134")
    new = update_table(table, obs)
    assert [r.version for r in new.releases] == ["2.13.0", "2.14.0", "2.14.1", "2.15.0"]
    r215 = new.get("2.15.0")
    assert r215 is not None and r215.cudas == ("13.0", "13.4") and r215.released == "2026-10-28"
    assert not any(c == "13.4" and p == "windows-amd64" for c, p, _ in r215.builds())
    assert ("13.4", "linux-aarch64", "3.15t") in set(r215.builds())
    assert new.get("2.13.0") == table.get("2.13.0")  # unchanged entries are kept as they were
    assert releases.parse(releases.dumps(new)) == new


def test_cli_updates_table_and_prints_new_cells(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], table_file: Path
) -> None:
    with Server() as srv:
        code, out, _ = run_watch(
            monkeypatch, capsys, srv, table_file, ATTN, options=("--backoff", "0.01")
        )
    assert code == 0
    assert "+ torch 2.15.0: CUDA 13.0, 13.4" in out and f"wrote {table_file}" in out
    assert "+ attn-demo-2.2.0-cu134-torch2.15-cp312-linux_aarch64" in out
    assert "  - attn-demo-2.2.0-cu130-torch2.14" not in out  # 2.14.1 supersedes 2.14.0: same cells
    text = table_file.read_text()
    assert releases.dumps(releases.parse(text)) == text  # written by the canonical writer
    # A second run finds nothing new.
    with Server() as srv:
        code, out, _ = run_watch(monkeypatch, capsys, srv, table_file, ATTN)
    assert code == 0 and "up to date" in out and "cells that became missing: 0" in out


def test_dry_run_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], table_file: Path
) -> None:
    before = table_file.read_bytes()
    with Server() as srv:
        code, out, _ = run_watch(monkeypatch, capsys, srv, table_file, ATTN, options=("--dry-run",))
    assert code == 0 and "dry run: table not written" in out and "cu134-torch2.15" in out
    assert table_file.read_bytes() == before


def test_flaky_server_is_retried(table_file: Path) -> None:
    sleeps: list[float] = []
    fetcher = Fetcher(tries=4, backoff=0.01, timeout=5, sleep=sleeps.append)
    with Server(fail_first=2) as srv:
        obs = observe(
            releases.load(table_file), pypi_url=srv.url, pytorch_url=srv.url, fetcher=fetcher
        )
    assert "2.15.0" in obs.pypi
    assert sleeps == [0.01, 0.02]  # exponential backoff


def test_always_failing_server_one_line_and_table_untouched(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], table_file: Path
) -> None:
    before = table_file.read_bytes()
    with Server(always_fail=True) as srv:
        with pytest.raises(NetworkError, match="failed after 3 tries"):
            observe(releases.load(table_file), pypi_url=srv.url, pytorch_url=srv.url, fetcher=FAST)
        code, out, err = run_watch(
            monkeypatch, capsys, srv, table_file, options=("--tries", "2", "--backoff", "0.01")
        )
    assert code == 10
    error_lines = [line for line in err.splitlines() if line.startswith("ERROR")]
    assert len(error_lines) == 1 and "table was not changed" in error_lines[0]
    assert err.strip() == error_lines[0]  # retries log at debug level only
    assert table_file.read_bytes() == before


def test_unreachable_host_is_a_network_error(table_file: Path) -> None:
    # Port 9 on loopback: nothing listens; connection refused on every try.
    with pytest.raises(NetworkError):
        observe(
            releases.load(table_file),
            pypi_url="http://127.0.0.1:9",
            pytorch_url="http://127.0.0.1:9",
            fetcher=Fetcher(tries=2, backoff=0, timeout=2),
        )


def test_clashing_recipes_still_update_the_table(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    table_file: Path,
    tmp_path: Path,
) -> None:
    copy = tmp_path / "attn-copy.toml"
    copy.write_text(ATTN.read_text())
    with Server() as srv:
        code, out, _ = run_watch(monkeypatch, capsys, srv, table_file, ATTN, copy)
    assert (
        code == 0
        and f"wrote {table_file}" in out
        and "no plan diff" in out
        and "planned by both" in out
    )


def test_a_release_that_is_not_plain_is_skipped_and_the_others_still_added(
    table_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An epoch (1!2.98.0) or post release upstream would reach cibw-env as torch==1!2.98.0;
    watch skips it with a warning, and a real new release next to it is still added."""
    table = releases.load(table_file)
    builds = frozenset({("13.0", "linux-x86_64", "3.12")})
    obs_builds = {v: builds for v in ("1!2.98.0", "2.15.0", "2.15.0.post1")}
    obs = Observation(pypi={}, builds=obs_builds)
    with caplog.at_level("WARNING", logger="wheelfactory.watch"):
        new = update_table(table, obs)
    assert [r.version for r in new.releases] == ["2.13.0", "2.14.0", "2.15.0"]
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2 and all("\n" not in m for m in skipped)
    assert any("'1!2.98.0'" in m and "epoch" in m for m in skipped)
    assert releases.parse(releases.dumps(new)) == new


@pytest.mark.parametrize("version", ["1!2.98.0", "2.15.0.post1", "2.15.0.dev1", "2.15"])
def test_the_table_refuses_a_version_that_is_not_plain(version: str) -> None:
    from wheelfactory.errors import ConfigError

    with pytest.raises(ConfigError, match=r"2\.8\.0") as e:
        releases.parse(TABLE.replace('version = "2.14.0"', f'version = "{version}"'))
    assert "\n" not in str(e.value)
