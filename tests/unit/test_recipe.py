from __future__ import annotations

from pathlib import Path

import pytest
from wheelfactory import arch
from wheelfactory.errors import RecipeError
from wheelfactory.recipe import load_recipe, parse_recipe

ROOT = Path(__file__).resolve().parents[2]
COMMIT = "0123456789abcdef0123456789abcdef01234567"

GOOD = f"""
[package]
name = "Demo_Ext"
version = "0.3.1"

[source]
git = "https://example.invalid/demo.git"
commit = "{COMMIT}"
subdirectory = "pkg"

[[extra-source]]
name = "cutlass"
url = "https://example.invalid/cutlass.tar.gz"
sha256 = "{'a' * 64}"
dest = "csrc/cutlass"

[matrix]
cuda = ">=12.8"
platforms = ["linux-x86_64"]

[[targets]]
cuda = ">=12.8,<12.9"
archs = ["9.0a", "12.0a"]

[[targets]]
cuda = ">=12.9"
archs = ["9.0a", "12.0a", "12.1a"]

[build]
links-driver = true

[[fix]]
why = "torch >= 2.13 needs C++20"
when = {{ torch = ">=2.13" }}
env-append = {{ CXX_APPEND_FLAGS = "-std=c++20" }}

[verify]
import = ["demo_ext", "demo_ext._C"]
"""


def parse(text: str) -> object:
    return parse_recipe(text, Path("recipes/demo.toml"))


def test_good_recipe() -> None:
    r = parse(GOOD)
    assert r.name == "demo-ext"
    assert r.source.pin == f"https://example.invalid/demo.git@{COMMIT}"
    assert r.extra_sources[0].dest == "csrc/cutlass"
    assert [str(t) for t in r.targets_for("12.8")] == ["9.0a", "12.0a"]
    assert [str(t) for t in r.targets_for("13.0")] == ["9.0a", "12.0a", "12.1a"]
    assert len(r.fixes_for(torch="2.14.1", cuda="13.0", python="3.11", os="linux")) == 1
    assert r.fixes_for(torch="2.12.0", cuda="13.0", python="3.11", os="linux") == ()
    assert len(r.sha256) == 64


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (f'commit = "{COMMIT}"', 'commit = "0123abc"', r"\[source.commit\] commit '0123abc' is not a full 40-hex commit; pin the full SHA"),
        ('sha256 = "' + "a" * 64, 'sha256 = "' + "A" * 64, r"extra-source.0.sha256\] .* 64 lowercase hex"),
        ("links-driver", "link-driver", r"\[build\] unknown key 'link-driver'; did you mean 'links-driver'\?"),
        ('"linux-x86_64"]', '"linux-x86-64"]', r"platform 'linux-x86-64' is unknown; did you mean 'linux-x86_64'"),
        ('"9.0a", "12.0a"]', '"9.0a", "12.0a+PTX"]', r"PTX of an arch-specific target"),
        ("[verify]", "[verfy]", r"unknown key 'verfy'; did you mean 'verify'"),
        ('dest = "csrc/cutlass"', 'dest = "../outside"', r"dest '../outside' must be a relative path inside the tree"),
        ('"demo_ext._C"]', '"demo_ext._C"]\nimport-for-targets = { "demo_ext._sm90" = "9.0a" }',
         r"\[verify.import-for-targets\] entry 'demo_ext._sm90' must list targets"),
        ('"demo_ext._C"]', '"demo_ext._C"]\nimport-for-targets = { "demo_ext._sm90" = ["9.0z"] }',
         r"\[verify.import-for-targets\] entry 'demo_ext._sm90': GPU target '9.0z'"),
        ('"demo_ext._C"]', '"demo_ext._C"]\nimport-for-targets = { "demo_ext._C" = ["9.0a"] }',
         r"'demo_ext._C' is in both import and import-for-targets"),
    ],
)
def test_broken_recipes_fail_with_one_line(old: str, new: str, message: str) -> None:
    assert old in GOOD
    with pytest.raises(RecipeError, match=message) as info:
        parse(GOOD.replace(old, new, 1))
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("recipes/demo.toml: ")


def test_verify_imports_only_the_modules_the_built_targets_make() -> None:
    """[verify] import-for-targets: a module only some targets make is imported by the builds
    that have one of them (matched by compute capability: "9.0" names 9.0a too)."""
    r = parse(GOOD.replace('import = ["demo_ext", "demo_ext._C"]', """import = ["demo_ext", "demo_ext._C"]
import-for-targets = { "demo_ext._sm90" = ["9.0"], "demo_ext._sm12x" = ["12.0a", "12.1a"] }"""))
    assert r.modules_for(arch.parse_targets("9.0a")) == ("demo_ext", "demo_ext._C", "demo_ext._sm90")
    assert r.modules_for(arch.parse_targets("12.1a")) == ("demo_ext", "demo_ext._C", "demo_ext._sm12x")
    assert r.modules_for(r.targets_for("13.0")) == ("demo_ext", "demo_ext._C", "demo_ext._sm90", "demo_ext._sm12x")
    # a recipe without the key imports its list whatever the targets (old recipes stay valid)
    assert parse(GOOD).modules_for(arch.parse_targets("12.0a")) == ("demo_ext", "demo_ext._C")


def test_not_toml() -> None:
    with pytest.raises(RecipeError, match="not valid TOML"):
        parse("[package\nname=")


def test_missing_file() -> None:
    with pytest.raises(RecipeError, match="cannot read recipe"):
        load_recipe(ROOT / "recipes" / "does-not-exist.toml")


def test_no_rule_for_cuda() -> None:
    r = parse(GOOD)
    with pytest.raises(RecipeError, match="no \\[\\[targets\\]\\] rule covers CUDA 12.6"):
        r.targets_for("12.6")


def test_target_rule_admitting_too_old_cuda() -> None:
    text = GOOD.replace('[matrix]\ncuda = ">=12.8"\n', "[matrix]\n").replace(
        'cuda = ">=12.8,<12.9"', 'cuda = "<12.9"'
    )
    with pytest.raises(RecipeError, match=r"\[targets.0.archs\] 9.0a .* needs CUDA >= 12.0, not 11.8, but cuda = .<12.9. admits 11.8; narrow cuda \(e.g. \">=12.0\"\) or drop 9.0a"):
        parse(text)


def test_matrix_narrowing_keeps_rule_valid() -> None:
    # the same rule is fine when [matrix] cuda already excludes the old CUDA releases
    parse(GOOD.replace('cuda = ">=12.8,<12.9"', 'cuda = "<12.9"'))


def test_snapshot_published_under_its_own_version() -> None:
    r = parse(GOOD.replace('version = "0.3.1"', 'version = "0.3.1.post20260115"\nupstream-version = "0.3.1"'))
    assert (r.version, r.upstream_version) == ("0.3.1.post20260115", "0.3.1")


@pytest.mark.parametrize(
    ("package", "message"),
    [
        ('version = "0.3.1+cu130"', r"\[package.version\] version '0.3.1\+cu130' is not a public PEP 440 version"),
        ('upstream-version = "0.3.1"', r"\[package.upstream-version\] upstream-version needs version"),
        ('version = "1.0"\nupstream-version = "one"', r"upstream-version 'one' is not a public PEP 440 version"),
    ],
)
def test_bad_versions(package: str, message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        parse(GOOD.replace('version = "0.3.1"', package))
