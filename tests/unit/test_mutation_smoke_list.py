"""scripts/mutation_smoke.py stays runnable: each break's text is still in its file once,
and the tests meant to catch it exist (the script itself runs on demand, not in CI)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("mutation_smoke", ROOT / "scripts/mutation_smoke.py")
assert _spec is not None and _spec.loader is not None
smoke = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = smoke  # dataclasses look their module up there
_spec.loader.exec_module(smoke)


@pytest.mark.parametrize("brk", smoke.BREAKS, ids=lambda b: b.name)
def test_each_break_still_applies(brk) -> None:
    text = (ROOT / brk.file).read_text(encoding="utf-8")
    assert text.count(brk.old) == 1, f"{brk.name}: its text is no longer in {brk.file} once"
    assert brk.new != brk.old
    for test in brk.tests:
        assert (ROOT / test.split("::")[0]).is_file(), test
