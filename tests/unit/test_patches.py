"""Recipe patches: pinned by sha256, applied with git apply before the build, recorded in
the build record; a wheel whose record disagrees with its recipe is refused."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from _index_wheels import make_wheel
from _records import record_json
from wheelfactory import cli, publish, source, verify
from wheelfactory.errors import PublishError, RecipeError
from wheelfactory.recipe import load_recipe

PATCH = """Zero the scale (a stand-in for a real fix), for the tests.
Mirrors: example/upstream#1 (written for wheelfactory from the issue's description).

diff --git a/pkg/kernel.cu b/pkg/kernel.cu
--- a/pkg/kernel.cu
+++ b/pkg/kernel.cu
@@ -1,2 +1,2 @@
 // kernel
-float scale = 1.0f / 0.0f;
+float scale = 0.0f;
"""


def make_repo(root: Path, *, patch: str = PATCH, pinned: str | None = None, extra: str = "") -> Path:
    """A repository around the cwd: recipes/demo.toml with one [[patch]], and a source tree."""
    (root / "recipes" / "patches" / "demo").mkdir(parents=True)
    patch_file = root / "recipes" / "patches" / "demo" / "0001-zero-scale.patch"
    patch_file.write_text(patch)
    sha = pinned or hashlib.sha256(patch_file.read_bytes()).hexdigest()
    (root / "recipes" / "demo.toml").write_text(
        '[package]\nname = "demo-ext"\n\n'
        '[[patch]]\nfile = "patches/demo/0001-zero-scale.patch"\n'
        f'sha256 = "{sha}"\nwhy = "the stand-in fix"\nmirrors = "example/upstream#1"\n{extra}\n'
        '[[targets]]\ncuda = ">=12.8"\narchs = ["9.0a"]\n'
    )
    tree = root / "src"
    (tree / "pkg").mkdir(parents=True)
    (tree / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    (tree / "pkg" / "kernel.cu").write_text("// kernel\nfloat scale = 1.0f / 0.0f;\n")
    return root / "recipes" / "demo.toml"


def test_the_patch_is_applied_and_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(make_repo(tmp_path))
    prepared = source.prepare_source(recipe, tmp_path / "work", local=tmp_path / "src", cache=tmp_path / "c")
    assert "float scale = 0.0f;" in (prepared.tree / "pkg" / "kernel.cu").read_text()
    assert "1.0f / 0.0f" in (tmp_path / "src" / "pkg" / "kernel.cu").read_text()  # the user's tree
    (applied,) = prepared.patches
    assert applied.file == "recipes/patches/demo/0001-zero-scale.patch"
    assert applied.mirrors == "example/upstream#1" and applied.why == "the stand-in fix"
    assert source.read_marker(tmp_path / "work") == prepared  # the CI cell's record reads it


def test_a_patch_for_another_os_is_not_applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(make_repo(tmp_path, extra='os = ["windows"]'))
    linux = source.prepare_source(recipe, tmp_path / "w1", local=tmp_path / "src", cache=tmp_path / "c",
                                  target_os="linux")  # fmt: skip
    assert linux.patches == () and "1.0f / 0.0f" in (linux.tree / "pkg" / "kernel.cu").read_text()
    windows = source.prepare_source(recipe, tmp_path / "w2", local=tmp_path / "src", cache=tmp_path / "c",
                                    target_os="windows")  # fmt: skip
    assert [p.file for p in windows.patches] == ["recipes/patches/demo/0001-zero-scale.patch"]


def test_a_patch_inside_a_git_checkout_applies_from_the_tree_top(tmp_path: Path, monkeypatch) -> None:
    """A [source] subdirectory sits inside the fetched checkout: paths still start at the tree."""
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(make_repo(tmp_path))
    outer = tmp_path / "checkout"
    (outer / "sub").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(outer)], check=True)
    tree = (tmp_path / "src").rename(outer / "sub" / "src")
    applied = source.apply_patches(tree, recipe.patches, tmp_path)
    assert len(applied) == 1 and "float scale = 0.0f;" in (tree / "pkg" / "kernel.cu").read_text()


def test_a_changed_patch_file_fails_the_recipe_in_one_line(tmp_path: Path) -> None:
    path = make_repo(tmp_path, pinned="0" * 64)
    with pytest.raises(RecipeError, match=r"\[patch\.0\.sha256\] .*0001-zero-scale.patch has sha256 [0-9a-f]{64}, not the pinned 0{64}") as e:
        load_recipe(path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('mirrors = "a fix"', "names no upstream PR or issue"),
        ('file = "../outside.patch"', "is not a .patch path inside the recipe's folder"),
        ('file = "patches/demo/missing.patch"', "cannot read patches/demo/missing.patch"),
        ('os = ["beos"]', "os 'beos' is unknown"),
    ],
)
def test_bad_patch_entries_are_refused(tmp_path: Path, line: str, match: str) -> None:
    path = make_repo(tmp_path)
    key = line.split(" = ")[0]
    text = path.read_text()
    lines = [ln for ln in text.splitlines() if not ln.startswith(f"{key} = ")]
    at = lines.index("[[patch]]") + 1
    path.write_text("\n".join([*lines[:at], line, *lines[at:]]) + "\n")
    with pytest.raises(RecipeError, match=match):
        load_recipe(path)


def test_a_patch_that_no_longer_applies_fails_before_torch_is_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sources come first: a stale patch costs seconds, not a torch download."""
    monkeypatch.chdir(tmp_path)
    path = make_repo(tmp_path)
    (tmp_path / "src" / "pkg" / "kernel.cu").write_text("// kernel\nfloat scale = 2.0f;\n")  # upstream moved
    cache = tmp_path / "cache"
    monkeypatch.setenv("WHEELFACTORY_CACHE", str(cache))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # only the local index: no machine mirrors
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    from test_buildenv import _standin_torch_index  # torch's metadata, served on 127.0.0.1
    from wheelfactory.serve import start_server

    with start_server(_standin_torch_index(tmp_path / "index")) as server:
        code = cli.main([
            "build", str(path), "--source", str(tmp_path / "src"), "--torch", "2.11.0", "--cuda", "13.0",
            "--arch", "9.0a", "--out", str(tmp_path / "out"), "--torch-index-url", server.url,
        ])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err[-1].startswith("ERROR: patch 0001-zero-scale.patch does not apply to the pinned source"), err
    assert not (cache / "envs").exists() and not (tmp_path / "out").exists()


def _wheel_built_from(tmp_path: Path, patches: list[dict]) -> Path:
    record = record_json(package="demo-ext", recipe="recipes/demo.toml", patches=patches)
    return make_wheel(tmp_path / "w", build_record=record)


def test_publish_and_release_check_refuse_a_record_that_disagrees_with_its_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(make_repo(tmp_path))
    pin = recipe.patches[0]
    good = {"file": "recipes/patches/demo/0001-zero-scale.patch", "sha256": pin.sha256,
            "why": pin.why, "mirrors": pin.mirrors}  # fmt: skip
    unpatched = _wheel_built_from(tmp_path / "a", [])
    with pytest.raises(PublishError, match="built from recipes/demo.toml but lacks 0001-zero-scale.patch"):
        publish.inspect_wheel(unpatched)
    from wheelfactory.ci import release

    assert any("patches: built from recipes/demo.toml but lacks" in f
               for f in release.verify_release(unpatched, cuobjdump=None))  # fmt: skip
    stale = _wheel_built_from(tmp_path / "b", [{**good, "sha256": "1" * 64}])
    with pytest.raises(PublishError, match="lacks 0001-zero-scale.patch; carries 0001-zero-scale.patch, which"):
        publish.inspect_wheel(stale)
    assert publish.inspect_wheel(_wheel_built_from(tmp_path / "c", [good])).build_record is not None


def test_a_wheel_whose_recipe_is_not_here_is_compared_with_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    record = json.loads(json.dumps(record_json(recipe="recipes/elsewhere.toml")))
    problem, detail = verify.patches_problem(verify.BuildRecord.from_json(record))
    assert problem is None and "not here" in detail
    assert os.getcwd() == str(tmp_path)
