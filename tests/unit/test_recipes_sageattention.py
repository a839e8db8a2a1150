"""The shipped recipes for SageAttention 2.x (tag and default branch) and SageAttention3.

They are checked against what upstream's setup.py does with TORCH_CUDA_ARCH_LIST (see the
comments in each recipe), not against copies of their own values.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.version import Version
from wheelfactory import arch, releases
from wheelfactory.plan import plan
from wheelfactory.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
SAGE2 = ("sageattention.toml", "sageattention-main.toml")
ALL = (*SAGE2, "sageattn3.toml")


@pytest.mark.parametrize("name", ALL)
def test_recipe_loads_and_every_cuda_it_admits_has_buildable_targets(name: str) -> None:
    r = load_recipe(RECIPES / name)
    assert r.source is not None and r.source.commit and len(r.source.commit) == 40
    admitted = [c for c in arch.known_cuda_releases() if r.matrix.cuda.contains(c)]
    assert admitted, f"{name} admits no CUDA release"
    for cuda in admitted:
        targets = r.targets_for(str(cuda))
        arch.check_buildable(targets, cuda)
        # PTX only where it can run elsewhere: never on an arch-specific target
        assert all(t.suffix != "a" for t in targets if t.ptx)


@pytest.mark.parametrize("name", SAGE2)
def test_sageattention_targets_are_what_setup_py_emits(name: str) -> None:
    r = load_recipe(RECIPES / name)
    for cuda in [c for c in arch.known_cuda_releases() if r.matrix.cuda.contains(c)]:
        targets = r.targets_for(str(cuda))
        by_cap = {t.capability: t for t in targets}
        # setup.py turns 9.0 into sm_90a (wgmma kernels): a plain 9.0 would mislabel it
        assert by_cap[(9, 0)].suffix == "a"
        # 8.x are plain targets in setup.py; one PTX, of the highest plain target below
        # 10.0, so that it JITs on every later GPU (10.x, 11.x, 12.x and beyond)
        assert all(t.suffix == "" for t in targets if t.major == 8)
        assert [t for t in targets if t.ptx] == [max(t for t in targets if t.suffix == "" and t.major < 10)]
    assert r.build.links_driver, "the sm_90 module links -lcuda"
    every = {m.rsplit(".", 1)[-1] for c in arch.known_cuda_releases() if r.matrix.cuda.contains(c)
             for m in r.modules_for(r.targets_for(str(c)))}  # fmt: skip
    assert every == {"_qattn_sm80", "_qattn_sm89", "_qattn_sm90", "_fused"}


def test_tag_and_branch_pin_different_commits_of_one_repository() -> None:
    tag, main = (load_recipe(RECIPES / n) for n in SAGE2)
    assert tag.source.git == main.source.git and tag.source.commit != main.source.commit
    # same package; the branch snapshot is published above the tag's version
    assert tag.name == main.name and main.upstream_version == tag.version
    assert Version(main.version) > Version(tag.version)
    # the branch adds sm_100a and sm_121a; the tag's setup.py skips 10.x and 12.1
    newest = str(max(arch.known_cuda_releases()))
    assert {(10, 0), (12, 1)} <= {t.capability for t in main.targets_for(newest)}
    assert not {(10, 0), (12, 1)} & {t.capability for t in tag.targets_for(newest)}


@pytest.mark.parametrize("name", ALL)
def test_cxx20_fix_applies_from_torch_2_13_only(name: str) -> None:
    r = load_recipe(RECIPES / name)
    for os_name in r.matrix.platforms:
        os_name = os_name.split("-")[0]

        def cxx20(torch: str) -> bool:
            fixes = r.fixes_for(torch=torch, cuda="13.0", python="3.12", os=os_name)
            return any("c++20" in f.env_append.get("NVCC_APPEND_FLAGS", "") for f in fixes)

        assert cxx20("2.13.0") and cxx20("2.14.1"), f"{name} on {os_name}"
        assert not cxx20("2.12.1"), f"{name} on {os_name}"


def test_sageattn3_is_blackwell_geforce_only_with_pinned_cutlass() -> None:
    r = load_recipe(RECIPES / "sageattn3.toml")
    assert r.source.subdirectory == "sageattention3_blackwell"
    assert r.build.no_gpu_shim and r.build.links_driver
    (cutlass,) = r.extra_sources
    assert cutlass.dest == "csrc/cutlass" and cutlass.sha256 and cutlass.member
    for cuda in [c for c in arch.known_cuda_releases() if r.matrix.cuda.contains(c)]:
        targets = r.targets_for(str(cuda))
        # api.cu accepts only compute capability 12.0 and 12.1
        assert {t.major for t in targets} == {12} and all(t.suffix == "a" for t in targets)
        # the shim answers the highest target; a fix must add every other target's code
        others = [t for t in targets if t != max(targets)]
        flags = " ".join(
            f.env_append.get("NVCC_APPEND_FLAGS", "")
            for f in r.fixes_for(torch="2.11.0", cuda=str(cuda), python="3.12", os="linux")
        )
        for t in others:
            assert f"code={t.sm}" in flags, f"CUDA {cuda}: no -gencode for {t}"


@pytest.mark.parametrize("name", [*SAGE2, "sageattention-stable.toml"])
def test_a_build_for_all_targets_imports_all_four_modules(name: str) -> None:
    r = load_recipe(RECIPES / name)
    newest = str(max(c for c in arch.known_cuda_releases() if r.matrix.cuda.contains(c)))
    assert sorted(r.modules_for(r.targets_for(newest))) == [
        "sageattention._fused", "sageattention._qattn_sm80", "sageattention._qattn_sm89",
        "sageattention._qattn_sm90",
    ]  # fmt: skip


def test_the_readme_build_for_9_0a_imports_only_what_it_makes() -> None:
    """README's "Build a real wheel": sageattention-stable.toml --arch 9.0a. The port's
    setup.py makes _qattn_sm80 for 8.0 only and _qattn_sm89 for 8.9/10.0/12.x only, so
    importing them failed verify after a full compile (issue 27)."""
    r = load_recipe(RECIPES / "sageattention-stable.toml")
    assert r.modules_for(arch.parse_targets("9.0a")) == ("sageattention._fused", "sageattention._qattn_sm90")
    assert r.modules_for(arch.parse_targets("12.0a")) == ("sageattention._fused", "sageattention._qattn_sm89")
    assert "build recipes/sageattention-stable.toml" in (ROOT / "README.md").read_text()


SA3 = ("sageattn3.toml", "sageattn3-abi3.toml", "sageattn3-stable.toml")


def test_sageattn3_plans_windows_for_every_torch_with_a_windows_cuda_12_8_build() -> None:
    """Issue 24: the patched recipes bring Windows back. Expected from the release table:
    every torch >= 2.7 minor with a Windows CUDA >= 12.8 build gets a 12.0a cell (and
    12.1a where CUDA >= 12.9), from one of the three recipes: a stable-ABI cell serves
    every torch minor from its floor on with its CUDA."""
    from wheelfactory import releases
    from wheelfactory.plan import Selection, plan

    table = releases.load()
    expected = {
        (r.minor, v.cuda)
        for r in table.planning_releases()
        if r.parsed >= Version("2.7")
        for v in r.variants
        if "windows-amd64" in v.platforms and Version(v.cuda) >= Version("12.8")
    }
    cells = plan([load_recipe(RECIPES / n) for n in SA3], table,
                 select=Selection(oses=("windows",))).cells  # fmt: skip
    served = {(Version(c.torch).base_version.rsplit(".", 1)[0], c.cuda) for c in cells if not c.stable_abi_floor}
    served |= {(minor, cuda) for c in cells if c.stable_abi_floor
               for minor, cuda in expected if cuda == c.cuda and Version(minor) >= Version(c.stable_abi_floor)}  # fmt: skip
    assert expected and served == expected
    for c in cells:
        assert c.platform == "windows-amd64"
        want = ("12.0a", "12.1a") if Version(c.cuda) >= Version("12.9") else ("12.0a",)
        assert c.targets == want, c


@pytest.mark.parametrize("name", SA3)
def test_sageattn3_carries_its_fixes_as_patches_and_no_zc_cplusplus(name: str) -> None:
    r = load_recipe(RECIPES / name)
    assert not r.matrix.platform_reasons, "Windows is back: nothing left out"
    everywhere = [p.file.name for p in r.patches_for("linux")]
    assert everywhere[:3] == [
        "0001-sm-count-from-device.patch",
        "0002-align-tma-descriptors.patch",
        "0003-params-by-pointer.patch",
    ]
    assert all(p.mirrors and p.why for p in r.patches_for("windows"))
    # /Zc:__cplusplus would make CUDA 13's CUtensorMap alignas(128): MSVC error C2719 for
    # the by-value kernel params (see the recipe); patch 0002 aligns them without it
    assert "/Zc:__cplusplus" not in r.build.msvc_flags
    assert "/bigobj" in r.build.msvc_flags


LIMITED_API_PATCH = RECIPES / "patches" / "sageattention" / "0002-limited-api-module-init.patch"


def _added_lines(patch: Path, path: str) -> list[str]:
    """The lines a patch adds to one file ("+" lines of that file's diff)."""
    section = next(s for s in patch.read_text().split("diff --git ")[1:] if s.startswith(f"a/{path} "))
    return [line[1:] for line in section.splitlines() if line.startswith("+") and not line.startswith("+++")]


@pytest.mark.parametrize("name", SAGE2)
def test_sageattention_abi3_tag_is_what_the_patched_setup_py_gives(name: str) -> None:
    """Issue 26 item 1: patch 0002 builds the four modules against the limited API. The
    recipe's abi3 tag must be the one the patched setup.py writes on the wheel and the
    Py_LIMITED_API floor it compiles for, and every module the recipe imports must be
    one of the patch's limited-API modules: else the factory expects a tag the build does
    not make, or promises a CPython the modules cannot load on."""
    r = load_recipe(RECIPES / name)
    assert LIMITED_API_PATCH.name in [p.file.name for p in r.patches]
    setup = "\n".join(_added_lines(LIMITED_API_PATCH, "setup.py"))
    (tag,) = set(re.findall(r'"py_limited_api": "(cp3\d+)"', setup))
    (floor,) = set(re.findall(r"-DPy_LIMITED_API=0x03([0-9A-Fa-f]{2})0000", setup))
    assert r.matrix.abi3 == tag == f"cp3{int(floor, 16)}"
    modules = r.modules_for(r.targets_for(str(max(c for c in arch.known_cuda_releases() if r.matrix.cuda.contains(c)))))
    assert setup.count("py_limited_api=True") == len(modules) == 4
    cpp = "\n".join(
        line for f in ("csrc/fused/pybind.cpp", *(f"csrc/qattn/pybind_sm{n}.cpp" for n in (80, 89, 90)))
        for line in _added_lines(LIMITED_API_PATCH, f)
    )  # fmt: skip
    assert "PYBIND11_MODULE" not in cpp
    for module in modules:
        assert f"SAGEATTN_EMPTY_MODULE({module.rsplit('.', 1)[1]})" in cpp
    # the modules' functions stay reachable as their attributes (ComfyUI nodes call them)
    for py in ("quant", "sm80_compile", "sm89_compile", "sm90_compile"):
        assert any(".__getattr__ = lambda name: getattr(torch.ops." in line
                   for line in _added_lines(LIMITED_API_PATCH, f"sageattention/{py}.py"))  # fmt: skip


@pytest.mark.parametrize("name", SAGE2)
def test_sageattention_plans_one_abi3_wheel_per_torch_minor_for_every_cpython(name: str) -> None:
    """One cp39-abi3 cell per torch minor x CUDA x platform, with no per-Python cell left:
    torch 2.6-2.8 ship CPython 3.9, and the abi3 wheel covers it."""
    r = load_recipe(RECIPES / name)
    result = plan([r], releases.load())
    assert result.cells and all(c.python == "cp39-abi3" for c in result.cells)
    keys = [(c.torch, c.cuda, c.platform) for c in result.cells]
    assert len(keys) == len(set(keys))
    by_torch = {Version(c.torch).release[:2]: c for c in result.cells}
    assert "3.9" in by_torch[(2, 6)].covers and "3.13" in by_torch[(2, 9)].covers


def test_sageattn3_abi3_and_stable_split_torch_at_the_stable_floor() -> None:
    """Issue 26: one stable-ABI wheel per (CUDA, platform) for torch >= 2.10, the per-torch
    abi3 recipe below it (and as the fallback): every torch minor >= 2.7 of the release table
    is built by exactly one of them, on the same pin with the same first three patches."""
    from wheelfactory import releases

    abi3, stable = (load_recipe(RECIPES / n) for n in ("sageattn3-abi3.toml", "sageattn3-stable.toml"))
    floor = stable.matrix.stable_abi_floor
    assert floor == "2.10" and stable.matrix.abi3 == abi3.matrix.abi3 == "cp310"
    minors = {r.minor for r in releases.load().planning_releases() if r.parsed >= Version("2.7")}
    assert minors
    for minor in minors:
        v = f"{minor}.0"
        assert abi3.matrix.torch.contains(v) != stable.matrix.torch.contains(v), minor
        assert stable.matrix.torch.contains(v) == (Version(minor) >= Version(floor)), minor
    assert (stable.source.git, stable.source.commit, stable.source.subdirectory) == (
        abi3.source.git, abi3.source.commit, abi3.source.subdirectory)
    assert [(p.file, p.sha256) for p in stable.patches[:3]] == [(p.file, p.sha256) for p in abi3.patches]
    (port,) = stable.patches[3:]
    assert port.file.parent.name == "sageattn3-stable" and not port.os  # every OS
    assert stable.gpu_check is not None  # a check is defined, but none has run: not GPU-checked


def test_a_sageattn3_stable_wheel_is_listed_as_not_gpu_checked_with_its_port() -> None:
    """No Blackwell GPU checks these wheels yet: the landing page must say so for the stable
    wheel too, and name the port patch it carries."""
    from wheelfactory import landing, naming, which
    from wheelfactory.manifest import Manifest, PublishedFile

    r = load_recipe(RECIPES / "sageattn3-stable.toml")
    pin = naming.TorchPin("2.14.1", floor=r.matrix.stable_abi_floor)
    name = f"sageattn3-{pin.labelled_version(r.version, '13.0')}-cp310-abi3-manylinux_2_34_x86_64.whl"
    record = {"targets": ["12.0a", "12.1a"], "torch": "2.14.1", "stable_abi_floor": r.matrix.stable_abi_floor,
              "patches": [{"file": f"recipes/patches/{p.file.parent.name}/{p.file.name}", "sha256": p.sha256,
                           "why": p.why, "mirrors": p.mirrors} for p in r.patches]}  # fmt: skip
    info = which.parse_wheel(name)
    wheel = PublishedFile(filename=name, project=info.project, version=info.version, sha256="a" * 64, size=400_000,
                          url=f"files/{name}", upload_time="2026-12-03T10:00:00.000000Z", build_record=record)  # fmt: skip
    page = landing.render_landing(Manifest(files=(wheel,)), "https://wheels.example.org/idx")["index.html"].decode()
    row = next(ln for ln in page.split("\n") if name in ln and "<tr" in ln)
    assert "not GPU-checked" in row
    assert "0004-stable-abi.patch (woct0rdho/SageAttention#42)" in row
