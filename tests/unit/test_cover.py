"""cover: which published stable-ABI wheels `wheelfactory cover` checks against which torch.
Below a wheel's floor it never tries (the import would fail, or worse, pass on a torch the
wheel was not checked against); at the floor and above it does, for every torch of the
release table that ships the wheel's CUDA and platform. A wheel that does not load on one
stays out of that view, with the reason recorded (the real import: tests/integration/
test_cover_release.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from _index_wheels import index_tree, make_stable_abi_wheel, make_wheel
from _records import record_json
from wheelfactory import cli, cover, releases, verify
from wheelfactory import publish as pub
from wheelfactory.errors import PublishError
from wheelfactory.manifest import load_manifest


def published(tmp_path: Path) -> Path:
    """An index with a stable-ABI wheel (floor 2.10) and a per-torch one."""
    idx = tmp_path / "idx"
    stable = make_stable_abi_wheel(tmp_path / "s")
    per_torch = make_wheel(tmp_path / "p", build_record=record_json())
    pub.publish([stable, per_torch], idx)
    return idx


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return published(tmp_path_factory.mktemp("cover"))  # read only: shared by the tests


def names(idx: Path, torch: str, cudas: list[str] | None = None) -> list[str]:
    return [f.filename for f in cover.candidates(load_manifest(idx).files, torch, cudas)]


STABLE = "demo_ext-1.0.0+cu130torchabi-cp310-abi3-any.whl"


@pytest.mark.parametrize("torch", ["2.9.1", "2.9.0+cu130", "1.13.1"])
def test_cover_never_tries_a_torch_below_the_floor(index: Path, torch: str) -> None:
    assert names(index, torch) == []


@pytest.mark.parametrize("torch", ["2.10.0", "2.10.1+cu130", "3.0.0"])
def test_cover_tries_the_floor_and_every_torch_above_it(index: Path, torch: str) -> None:
    assert names(index, torch) == [STABLE]


def test_cover_skips_what_is_covered_yanked_or_of_another_cuda(tmp_path: Path) -> None:
    index = published(tmp_path)
    assert names(index, "2.14.1") == []  # verified with 2.14 when published: covered already
    assert names(index, "2.15.0", cudas=["12.8"]) == []
    pub.set_yanked(index, STABLE, yanked=True, reason="wrong output")
    assert names(index, "2.15.0") == []


def test_a_wheel_that_imported_at_its_floor_is_listed_in_the_floors_view(tmp_path: Path) -> None:
    """What cover does after the import check passed, at the floor itself: 2.10's view lists
    the wheel (below the floor is refused; test_gpucheck covers that)."""
    index = published(tmp_path)
    assert pub.add_covers(index, STABLE, "2.10").covers == ("2.10", "2.14")
    assert STABLE in (index / "cu130/torch2.10/simple/demo-ext/index.html").read_text()


# --------------------------------------------------------------------------- the release path


def table_of(*releases_: tuple[str, str, tuple[str, ...]]) -> releases.ReleaseTable:
    """A release table of (torch version, CUDA, platforms) rows, through the real parser."""
    rows = tuple(
        releases.TorchRelease(version=v, pythons=("3.11",), variants=(releases.Variant(cuda=c, platforms=p),))
        for v, c, p in releases_
    )
    return releases.parse(releases.dumps(releases.ReleaseTable(releases=rows)))


LINUX = ("linux-x86_64", "linux-aarch64")


def test_the_release_path_checks_every_torch_of_the_table_from_the_floor(index: Path) -> None:
    """No --torch: each minor of the table (its newest patch) at or above the floor that
    ships the wheel's CUDA, less the one it is listed for already (2.14, its build's)."""
    table = table_of(("2.9.1", "13.0", LINUX), ("2.10.0", "13.0", LINUX), ("2.11.0", "12.8", LINUX),
                     ("2.12.0", "13.0", LINUX), ("2.12.1", "13.0", LINUX), ("2.14.1", "13.0", LINUX),
                     ("2.15.0", "13.0", ("windows-amd64",)))  # fmt: skip
    files = load_manifest(index).files
    assert [(t, f.filename) for t, f in cover.planned(files, table)] == [
        ("2.10.0", STABLE), ("2.12.1", STABLE), ("2.15.0", STABLE),
    ]  # fmt: skip


def test_a_linux_wheel_is_not_checked_for_a_torch_that_ships_its_cuda_on_windows_only(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    wheel = make_wheel(
        tmp_path / "w", torch="abi", requires_torch="torch>=2.10", python_tag="cp310", abi_tag="abi3",
        platform_tag="manylinux_2_28_x86_64",
        build_record=record_json(package_version="1.0.0+cu130torchabi", stable_abi_floor="2.10",
                                 torch_requirement="torch>=2.10", python_tag="cp310-abi3"),
    )  # fmt: skip
    pub.publish([wheel], idx)
    table = table_of(("2.12.1", "13.0", ("windows-amd64",)), ("2.13.0", "13.0", LINUX))
    assert [t for t, _ in cover.planned(load_manifest(idx).files, table)] == ["2.13.0"]


needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")


def stable_wheel_importing(tmp_path: Path, symbol: str, platform_tag: str = "any") -> Path:
    """The stable-ABI demo wheel (floor 2.10) with one real ELF module that imports ``symbol``."""
    src = tmp_path / "_C.c"
    src.write_text(f"void {symbol}(void); void f(void) {{ {symbol}(); }}\n")
    so = tmp_path / "_C.abi3.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(so), str(src)], check=True)
    return make_wheel(
        tmp_path / "w", torch="abi", requires_torch="torch>=2.10", python_tag="cp310", abi_tag="abi3",
        platform_tag=platform_tag, extra_files={"demo_ext/_C.abi3.so": so.read_bytes()},
        build_record=record_json(package_version="1.0.0+cu130torchabi", stable_abi_floor="2.10",
                                 torch_requirement="torch>=2.10", python_tag="cp310-abi3"),
    )  # fmt: skip


@needs_cc
def test_a_wheel_that_does_not_load_on_a_torch_stays_out_of_its_view_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bad input of the release path: a stable wheel (floor 2.10) whose module imports a
    C-shim symbol torch first exports in 2.13. The symbol audit, with no torch installed,
    keeps it out of the 2.10 to 2.12 views, each in one line naming the wheel, the torch and
    the symbol; the manifest records each gap for `coverage`; nothing else changes."""
    first = verify.stable_abi_table()["first_exported_in"]
    symbol = next(name for name, since in sorted(first.items()) if since == "2.13")
    monkeypatch.setenv("WHEELFACTORY_CACHE", str(tmp_path / "cache"))  # nothing shared is written
    idx = tmp_path / "idx"
    pub.publish([stable_wheel_importing(tmp_path, symbol)], idx)
    before = index_tree(idx)
    table_file = tmp_path / "torch-releases.toml"
    releases.dump(table_of(*((v, "13.0", LINUX) for v in ("2.10.0", "2.11.0", "2.12.1"))), table_file)

    assert cli.main(["cover", "--index", str(idx), "--table", str(table_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"NOT covered {STABLE}: symbol audit against torch {m}: _C.abi3.so imports {symbol},"
        f" which torch {m} does not export (first exported by torch 2.13)"
        for m in ("2.10", "2.11", "2.12")
    ]
    entry = load_manifest(idx).by_filename[STABLE]
    assert entry.covers == ("2.14",)  # the view it was published for stays; no new one
    assert sorted(entry.not_covered) == ["2.10", "2.11", "2.12"]
    assert entry.not_covered["2.11"] == lines[1].split(": ", 1)[1]
    after = index_tree(idx)
    assert {p for p in after if after[p] != before.get(p)} == {"manifest.json"}
    assert not any(p.startswith(("cu130/torch2.10", "cu130/torch2.11", "cu130/torch2.12")) for p in after)
    # decided: the next run (watch's, daily) installs nothing and says so
    assert cli.main(["cover", "--index", str(idx), "--table", str(table_file)]) == 0
    assert "nothing to check" in capsys.readouterr().out
    assert index_tree(idx) == after


def test_a_gap_is_recorded_and_a_later_pass_lists_the_wheel_and_clears_it(tmp_path: Path) -> None:
    index = published(tmp_path)
    why = "import demo_ext._C failed with torch 2.12.1: ImportError: undefined symbol: aoti_torch_x"
    assert pub.add_gap(index, STABLE, "2.12", why).not_covered == {"2.12": why}
    assert names(index, "2.12.1") == [STABLE]  # an explicit --torch tries again
    assert [f.filename for f in cover.candidates(load_manifest(index).files, "2.12.1", retry_gaps=False)] == []
    entry = pub.add_covers(index, STABLE, "2.12")
    assert entry.covers == ("2.12", "2.14") and entry.not_covered == {}
    with pytest.raises(PublishError, match="listed for torch 2.14 already; yank it"):
        pub.add_gap(index, STABLE, "2.14", why)


@needs_cc
def test_the_symbol_audit_refuses_a_symbol_a_later_torch_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch-stable-abi.json lists no removal yet; a table that says 2.13 dropped a symbol
    (as scripts/update_stable_abi.py writes removed_in) makes 2.13 and later a gap, and a
    minor the table does not know is left to the import check."""
    real = verify.stable_abi_table()
    symbol = next(name for name, since in sorted(real["first_exported_in"].items()) if since == "2.10")
    table = {**real, "removed_in": {"2.13": [symbol], "2.14": [symbol]}}
    monkeypatch.setattr(verify, "stable_abi_table", lambda: table)
    src = tmp_path / "_C.c"
    src.write_text(f"void {symbol}(void); void f(void) {{ {symbol}(); }}\n")
    so = tmp_path / "_C.abi3.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(so), str(src)], check=True)
    assert cover.audit_problem([so], "2.12.1") is None
    assert cover.audit_problem([so], "2.13.0") == (
        f"symbol audit against torch 2.13: _C.abi3.so imports {symbol}, which torch 2.13 no longer exports"
    )
    assert cover.audit_problem([so], "2.99.0") is None  # not in the table: the import decides


def test_a_recorded_gap_is_in_the_manifest_schema_and_an_index_without_gaps_keeps_its_bytes(tmp_path: Path) -> None:
    import json

    import jsonschema
    from wheelfactory import resources

    index = published(tmp_path)
    before = (index / "manifest.json").read_bytes()
    assert b"not_covered" not in before  # absent when there is no gap: old manifests unchanged
    pub.add_gap(index, STABLE, "2.12", "import demo_ext._C failed with torch 2.12.1: ImportError: x")
    data = json.loads((index / "manifest.json").read_bytes())
    schema = json.loads((resources.RESOURCES / "manifest.schema.json").read_text())
    jsonschema.validate(data, schema)
    (entry,) = [f for f in data["files"] if f["filename"] == STABLE]
    assert entry["not_covered"] == {"2.12": "import demo_ext._C failed with torch 2.12.1: ImportError: x"}
    entry["not_covered"] = {"2.12": "two\nlines"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


@needs_cc
def test_coverage_shows_the_gap_that_cover_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 22's done-when, end to end: cover keeps the stable wheel that does not load on
    torch 2.11 out of that view, and `coverage` of the index fails naming that environment."""
    from test_coverage import STABLE_NAME, STABLE_RECIPE

    monkeypatch.setenv("WHEELFACTORY_CACHE", str(tmp_path / "cache"))
    first = verify.stable_abi_table()["first_exported_in"]
    symbol = next(name for name, since in sorted(first.items()) if since == "2.13")
    wheel = stable_wheel_importing(tmp_path, symbol, platform_tag="manylinux_2_28_x86_64")
    assert wheel.name == STABLE_NAME
    idx = tmp_path / "idx"
    pub.publish([wheel], idx)
    table_file = tmp_path / "torch-releases.toml"
    releases.dump(table_of(("2.11.0", "13.0", LINUX)), table_file)
    assert cli.main(["cover", "--index", str(idx), "--table", str(table_file)]) == 0
    assert capsys.readouterr().out.startswith(f"NOT covered {STABLE_NAME}: symbol audit against torch 2.11:")

    recipe = tmp_path / "demo-ext.toml"
    recipe.write_text(STABLE_RECIPE)
    assert cli.main(["coverage", str(recipe), "--index", str(idx), "--python", "3.12"]) == 11
    out = capsys.readouterr().out
    assert "- demo-ext 1.0.0: torch 2.11, CUDA 13.0, Python 3.12, linux-x86_64: no wheel in cu130/torch2.11 view" in out


@needs_cc
def test_a_local_copy_that_is_not_the_published_file_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--wheels dist: the publish job's copies stand in for release assets not downloadable
    yet, but only bytes with the manifest's sha256 are checked; other bytes change nothing."""
    monkeypatch.setenv("WHEELFACTORY_CACHE", str(tmp_path / "cache"))
    first = verify.stable_abi_table()["first_exported_in"]
    symbol = next(name for name, since in sorted(first.items()) if since == "2.13")
    idx = tmp_path / "idx"
    pub.publish([stable_wheel_importing(tmp_path, symbol)], idx)
    before = index_tree(idx)
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / STABLE).write_bytes(b"not the published wheel")
    table_file = tmp_path / "torch-releases.toml"
    releases.dump(table_of(("2.11.0", "13.0", LINUX)), table_file)
    argv = ["cover", "--index", str(idx), "--table", str(table_file), "--wheels", str(dist)]
    assert cli.main(argv) == 9
    (error,) = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("ERROR")]
    assert f"dist/{STABLE} has sha256 " in error and "the index published" in error
    assert index_tree(idx) == before
    shutil.copy(idx / "files" / STABLE, dist / STABLE)  # the published bytes
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.startswith(f"NOT covered {STABLE}: symbol audit against torch 2.11:")
