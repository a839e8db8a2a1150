"""An index published WITHOUT an index URL, served under a prefix on 127.0.0.1 and opened
in headless Chromium: the landing page takes its root from the browser's address, so the
commands it shows point at where it is served (and which.py asks for --index-url).

Chromium is Debian's (/usr/bin/chromium or $WHEELFACTORY_CHROMIUM), driven by Playwright
without Playwright's browser download, as in test_landing_browser.py.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest
from _index_wheels import make_wheel
from _records import record_json
from wheelfactory import landing
from wheelfactory import publish as pub

CHROMIUM = os.environ.get("WHEELFACTORY_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_page_without_index_url_uses_its_own_address(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium, or set "
                    "WHEELFACTORY_CHROMIUM")
    from playwright.sync_api import sync_playwright

    site = tmp_path / "site"
    wheel = make_wheel(tmp_path / "w", python_tag="cp312", abi_tag="cp312",
                       platform_tag="manylinux_2_28_x86_64", build_record=record_json(targets=["9.0a"]))
    pub.publish([wheel], site / "idx")  # no index_url: "" in the manifest
    assert landing.INDEX_ROOT_LINE in (site / "idx" / "which.py").read_text()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{server.server_address[1]}/idx"
    errors: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, args=FLAGS)
            pg = browser.new_page()
            pg.on("pageerror", lambda e: errors.append(str(e)))
            for address in (root + "/", root + "/index.html"):
                pg.goto(address)
                pg.select_option("#sel-python", "3.12")
                pg.select_option("#sel-platform", "linux-x86_64")
                assert pg.get_attribute("#result", "data-ok") == "1", pg.inner_text("#verdict")
                view = f"{root}/cu130/torch2.14/simple/"
                assert pg.inner_text("#cmd-pip") == (
                    f"python -m pip install demo-ext --extra-index-url {view}")
                shown = pg.eval_on_selector_all(".wf-root", "els => els.map(e => e.textContent)")
                assert shown and set(shown) == {root}
            browser.close()
    finally:
        server.shutdown()
    assert errors == []
