"""Complete build records (record.BuildRecord, version 2) for tests that write wheels."""

from __future__ import annotations

from typing import Any

from wheelfactory.record import BuildRecord


def record_json(**over: Any) -> dict[str, Any]:
    """A valid build record as JSON; ``over`` replaces fields (lists stay lists)."""
    base: dict[str, Any] = {
        "version": 2,
        "package": "demo-ext",
        "package_version": "1.0.0+cu130torch2.14",
        "upstream_version": "1.0.0",
        "recipe": None,
        "recipe_sha256": None,
        "builder": "wheelfactory build",
        "platform": "linux-x86_64",
        "torch": "2.14.1",
        "torch_requirement": "torch==2.14.*",
        "cuda": "13.0",
        "python_tag": "cp311-cp311",
        "targets": ["9.0a", "12.0a"],
    }
    base.update(over)
    return base


def record(**over: Any) -> BuildRecord:
    return BuildRecord.from_json(record_json(**over))
