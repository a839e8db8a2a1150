"""One chain of wheel checks (verify.CHAIN) run by verify, release-check and publish; what
differs between them is the table verify.LEFT_OUT."""

from __future__ import annotations

from pathlib import Path

import pytest
from _index_wheels import make_wheel
from _records import record_json
from wheelfactory import publish, verify
from wheelfactory.ci import release
from wheelfactory.errors import PublishError

EXTENSION = "demo_ext/_C.cpython-311-x86_64-linux-gnu.so"


def test_the_table_names_only_stages_and_links_that_exist() -> None:
    names = [link.name for link in verify.CHAIN]
    assert len(names) == len(set(names))
    assert set(verify.LEFT_OUT) == {"verify", "release-check", "publish"}
    for stage, left_out in verify.LEFT_OUT.items():
        assert set(left_out) <= set(names), stage
        assert all(why.strip() for why in left_out.values()), f"{stage}: say why a link is left out"


def test_a_new_link_runs_in_every_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a link to CHAIN is all it takes: verify, release-check and publish run it."""
    seen: list[str] = []

    def new_link(subject: verify.Subject) -> list[verify.Check]:
        seen.append(subject.wheel.path.name)
        return [verify.Check(name="new check", ok=False, detail="the new check refuses it")]

    monkeypatch.setattr(verify, "CHAIN", [*verify.CHAIN, verify.Link("new check", new_link)])
    wheel = make_wheel(tmp_path / "w", build_record=record_json(package="demo-ext"))

    report = verify.verify_wheel(
        wheel, verify.Expectation.of(verify.wheelfile.read_wheel(wheel).build_record),
        build_env=None, stub_dir=None, work=tmp_path / "work",
    )  # fmt: skip
    assert any(c.name == "new check" and not c.ok for c in report.checks)
    assert any("new check: the new check refuses it" in f for f in release.verify_release(wheel, cuobjdump=None))
    with pytest.raises(PublishError, match="the new check refuses it"):
        publish.inspect_wheel(wheel)
    assert len(seen) == 3


def test_publish_refuses_a_binary_wheel_without_a_build_record(tmp_path: Path) -> None:
    """No record: no targets, no guard, nothing the GPU gate could hold (verify refuses it
    too). A pure-Python wheel, with nothing that runs on the GPU, needs none."""
    binary = make_wheel(tmp_path / "b", extra_files={EXTENSION: b"\x7fELF"})
    with pytest.raises(PublishError, match="wheelfactory-build.json is missing"):
        publish.inspect_wheel(binary)
    with pytest.raises(PublishError, match="wheelfactory-build.json is missing"):
        publish.publish([binary], tmp_path / "index")
    assert not (tmp_path / "index" / "manifest.json").exists()
    assert publish.inspect_wheel(make_wheel(tmp_path / "p")).build_record is None


def test_release_check_and_publish_agree_on_a_wrong_pin(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "w", requires_torch="torch>=2.0", build_record=record_json(package="demo-ext")
    )
    failures = release.verify_release(wheel, cuobjdump=None)
    assert any("requires torch" in f and "not torch==2.14.*" in f for f in failures)
    with pytest.raises(PublishError, match=r"not torch==2\.14\.\*"):
        publish.inspect_wheel(wheel)
