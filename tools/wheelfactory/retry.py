"""One rule for retrying network calls (GitHub's API, PyPI, PyTorch's index, an index's
manifest): bounded tries, exponential backoff, and a one-line NetworkError at the end.

An HTTP error is retried only when the server may answer differently later (429, 5xx);
any other status is the answer, and the caller's ``on_http_error`` turns it into the
message that says what to fix (or returns None to give up with the generic one).
"""

from __future__ import annotations

import logging
import time
import urllib.error
from collections.abc import Callable
from typing import TypeVar

from wheelfactory.errors import NetworkError

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def with_retries(
    what: str,
    attempt: Callable[[], T],
    *,
    tries: int = 3,
    backoff: float = 1.0,
    fix: str = "retry later or check the URL",
    on_http_error: Callable[[urllib.error.HTTPError], str | None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``attempt()``'s result; retries network errors and 429/5xx up to ``tries`` times,
    waiting ``backoff``, 2x``backoff``, ... seconds in between. ``what`` ("GET <url>") and
    ``fix`` make the final error's line."""
    delay = backoff
    for n in range(1, tries + 1):
        try:
            return attempt()
        except urllib.error.HTTPError as e:
            if e.code not in RETRY_STATUS:
                message = on_http_error(e) if on_http_error else None
                raise NetworkError(message or f"{what}: HTTP {e.code}; {fix}") from e
            err: Exception = e
            reason = f"HTTP {e.code}"
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
            err, reason = e, str(getattr(e, "reason", e))
        if n == tries:
            raise NetworkError(f"{what}: failed after {tries} tries ({reason}); {fix}") from err
        log.debug("%s: %s; retrying in %.1f s", what, reason, delay)  # -v shows retries
        sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover
