from __future__ import annotations

import pytest
from wheelfactory.serve import HTML_V1, JSON_V1, TEXT_HTML, negotiate

PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1,"
    " text/html; q=0.01"
)


@pytest.mark.parametrize(
    ("accept", "form"),
    [
        (PIP_ACCEPT, JSON_V1),
        (None, TEXT_HTML),
        ("", TEXT_HTML),
        ("text/html", TEXT_HTML),
        ("*/*", TEXT_HTML),
        ("application/vnd.pypi.simple.latest+json", JSON_V1),
        ("application/vnd.pypi.simple.v1+html", HTML_V1),
        ("text/html, application/vnd.pypi.simple.v1+json", TEXT_HTML),  # tie: client order
        ("text/html;q=0.5, application/vnd.pypi.simple.v1+json;q=0.9", JSON_V1),
        ("application/vnd.pypi.simple.v1+json;q=0", TEXT_HTML),
        ("image/png", TEXT_HTML),
    ],
)
def test_negotiate(accept: str | None, form: str) -> None:
    assert negotiate(accept) == form
