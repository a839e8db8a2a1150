"""retry.with_retries: the one retry rule of every network call."""

from __future__ import annotations

import io
import urllib.error

import pytest
from wheelfactory.errors import NetworkError
from wheelfactory.retry import with_retries


def http_error(code: int) -> urllib.error.HTTPError:
    return urllib.error.HTTPError("http://x/", code, "err", {}, io.BytesIO(b""))  # type: ignore[arg-type]


def flaky(errors: list[Exception], result: str = "ok"):
    calls = []

    def attempt() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return result

    return attempt, calls


def test_network_errors_and_5xx_are_retried_with_backoff() -> None:
    waits: list[float] = []
    attempt, calls = flaky([urllib.error.URLError("refused"), http_error(503)])
    assert with_retries("GET x", attempt, tries=3, backoff=0.5, sleep=waits.append) == "ok"
    assert len(calls) == 3 and waits == [0.5, 1.0]


def test_the_last_failure_is_one_line_with_the_fix() -> None:
    attempt, calls = flaky([http_error(500)] * 5)
    with pytest.raises(NetworkError, match=r"^GET x: failed after 2 tries \(HTTP 500\); check it$"):
        with_retries("GET x", attempt, tries=2, fix="check it", sleep=lambda s: None)
    assert len(calls) == 2


def test_a_client_error_is_the_answer_not_retried() -> None:
    attempt, calls = flaky([http_error(404)])
    with pytest.raises(NetworkError, match="GET x: not there"):
        with_retries("GET x", attempt, on_http_error=lambda e: "GET x: not there", sleep=lambda s: None)
    assert len(calls) == 1
    attempt, calls = flaky([http_error(400)])
    with pytest.raises(NetworkError, match=r"GET x: HTTP 400; retry later"):
        with_retries("GET x", attempt, sleep=lambda s: None)
    assert len(calls) == 1
