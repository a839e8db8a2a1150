"""watch's PyPI reader against the live PyPI JSON API (one ~1 MB request).

Runs only with --run-integration, and skips when pypi.org cannot be reached (a failure
under CI=true: CI's machine reaches PyPI, see tests/conftest.py).
PyTorch's own index is not reached from here, so only the PyPI half is live.
"""

from __future__ import annotations

import pytest
from wheelfactory.errors import NetworkError
from wheelfactory.watch import PYPI_URL, Fetcher, parse_pypi


def test_live_pypi_torch_releases() -> None:
    import json

    try:
        got = Fetcher(tries=2, backoff=1, timeout=20).get(
            f"{PYPI_URL}/pypi/torch/json", accept="application/json"
        )
    except NetworkError as e:
        pytest.skip(f"PyPI unreachable: {e}")
    assert got is not None
    releases = parse_pypi(json.loads(got[1]))
    # Facts the packaged table relies on (see its "pypi" source).
    assert releases["2.8.0"].released == "2025-08-06"
    assert "3.13t" in releases["2.8.0"].pythons and "3.9" in releases["2.8.0"].pythons
    assert releases["2.9.1"].pythons[0] == "3.10" and "3.14t" in releases["2.9.1"].pythons
    assert "2.7.1" in releases and "2.7.0" in releases
