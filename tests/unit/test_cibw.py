"""ci/cibw.py: a planned job -> CIBW_* settings; the CI image table; $GITHUB_ENV rendering."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from wheelfactory import releases
from wheelfactory.ci import cibw
from wheelfactory.errors import ConfigError
from wheelfactory.recipe import load_recipe, parse_recipe

ROOT = Path(__file__).resolve().parents[2]


def job(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "quirky-ext-0.3.1-cu130-torch2.14-linux_x86_64",
        "recipe": "tests/fixtures/quirky_ext.toml",
        "version": "0.3.1",
        "torch": "2.14.1",
        "cuda": "13.0",
        "os": "linux",
        "machine": "x86_64",
        "runner": "ubuntu-24.04",
        "pythons": ["3.11", "3.12"],
        "cibw_build": "cp311-manylinux_x86_64 cp312-manylinux_x86_64",
        "targets": "9.0a;12.0a",
    }
    base.update(over)
    return base


def windows_job(**over: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "id": "quirky-ext-0.3.1-cu128-torch2.14-windows_amd64", "os": "windows", "machine": "amd64",
        "runner": "windows-2022", "cuda": "12.8", "cibw_build": "cp312-win_amd64", "pythons": ["3.12"],
    }  # fmt: skip
    fields.update(over)
    return job(**fields)


def assignments_of(environment: str) -> dict[str, str]:
    """What cibuildwheel's own parser makes of CIBW_ENVIRONMENT on a host with nothing set."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return evaluate_in_cibuildwheel(environment, {"PATH": path})


def cibw_start() -> str:
    return '$(python -c "import time; print(int(time.time()))")'


RECIPE = """
[package]
name = "demo"
version = "1.0"
[source]
url = "https://example.invalid/demo-1.0.tar.gz"
sha256 = "{sha}"
[[targets]]
cuda = ">=12.8"
archs = ["9.0a", "12.0a"]
[build]
links-driver = true
env = {{ EXT_PARALLEL = "4" }}
msvc-flags = ["/permissive-", "/Zc:__cplusplus"]
[[fix]]
why = "C++20 for new torch headers"
when = {{ torch = ">=2.13" }}
env-append = {{ CXX_APPEND_FLAGS = "-std=c++20" }}
""".format(sha="0" * 64)


def demo_recipe():
    return parse_recipe(RECIPE, Path("recipes/demo.toml"))


def test_ci_table_covers_every_cuda_ci_builds():
    table = cibw.load_ci_table()
    rel = releases.load()
    for release in rel.releases:
        for variant in release.variants:
            for platform in variant.platforms:
                row = table.cuda.get(variant.cuda)
                assert row is not None, f"{variant.cuda} (torch {release.version}) has no row"
                if platform.startswith("linux"):
                    assert platform in row.images, (variant.cuda, platform)
                    assert row.images[platform].endswith(f":cuda{variant.cuda}")
                else:  # every Windows variant needs a toolkit
                    assert row.toolkits.get("windows-amd64", "").startswith(variant.cuda + ".")


def test_linux_job_settings():
    env = cibw.cibw_env(cibw.parse_job(job()), recipe=demo_recipe())
    assert env["CIBW_BUILD"] == "cp311-manylinux_x86_64 cp312-manylinux_x86_64"
    assert env["CIBW_ARCHS"] == "x86_64"
    assert env["CIBW_MANYLINUX_X86_64_IMAGE"] == "pytorch/manylinux2_28-builder:cuda13.0"
    assert "CIBW_MANYLINUX_AARCH64_IMAGE" not in env
    assert "--no-isolation" in env["CIBW_BUILD_FRONTEND"]
    # torch pinned to this cell's exact build, from PyTorch's index for this CUDA
    assert "torch==2.14.1+cu130" in env["CIBW_BEFORE_BUILD"]
    assert "https://download.pytorch.org/whl/cu130" in env["CIBW_BEFORE_BUILD"]
    assert env["CIBW_TEST_REQUIRES"] == "torch==2.14.1+cu130"
    assert "wheelfactory repair {wheel} --out {dest_dir}" in env["CIBW_REPAIR_WHEEL_COMMAND"]
    assert "--torch 2.14.1 --cuda 13.0 --arch 9.0a,12.0a" in env["CIBW_REPAIR_WHEEL_COMMAND"]
    assert env["CIBW_TEST_COMMAND"].endswith("python -m wheelfactory smoke {wheel}")
    assignments = assignments_of(env["CIBW_ENVIRONMENT"])
    assert assignments["TORCH_CUDA_ARCH_LIST"] == "9.0a;12.0a"
    assert assignments["CUDA_HOME"] == "/usr/local/cuda"
    assert assignments["LIBRARY_PATH"].startswith("/usr/local/cuda/lib64/stubs")  # links-driver
    assert assignments["EXT_PARALLEL"] == "4"
    assert assignments["CXX_APPEND_FLAGS"] == "-std=c++20"  # appended (to nothing here)
    assert "CL" not in assignments
    assert assignments["WHEELFACTORY_BUILD_START"].isdigit()
    assert env["WHEELFACTORY_ARTIFACT"] == "wheels-quirky-ext-0.3.1-cu130-torch2.14-linux_x86_64"


def evaluate_in_cibuildwheel(environment: str, outer: dict[str, str]) -> dict[str, str]:
    """What cibuildwheel's own parser (the version build-cells.yml pins) makes of it."""
    from cibuildwheel.environment import parse_environment

    return parse_environment(environment).as_dictionary(outer)


def test_environment_as_cibuildwheel_evaluates_it():
    recipe = parse_recipe(
        RECIPE.replace(
            'env-append = { CXX_APPEND_FLAGS = "-std=c++20" }',
            'env-append = { CXX_APPEND_FLAGS = "-std=c++20", NVCC_APPEND_FLAGS = "-std=c++20" }',
        )
        + '[[fix]]\nwhy = "odd"\nenv = { ODD = "a \\"b\\" $HOME `x` it\'s" }\n',
        Path("recipes/demo.toml"),
    )
    environment = cibw.cibw_env(cibw.parse_job(job()), recipe=recipe)["CIBW_ENVIRONMENT"]
    # $(python ...) runs: this interpreter's folder first on PATH
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    outer = {"PATH": path, "HOME": "/root", "CXX_APPEND_FLAGS": "-O1", "LIBRARY_PATH": "/x"}
    env = evaluate_in_cibuildwheel(environment, outer)
    assert env["CXX_APPEND_FLAGS"] == "-O1 -std=c++20"  # appended inside one word, no stray quotes
    # one nvcc thread per job, the CUDA 13 compression default and the fix after it; the
    # runner's own flags (none here) between
    assert env["NVCC_APPEND_FLAGS"].split() == ["--threads", "1", "--compress-mode=size", "-std=c++20"]
    assert env["LIBRARY_PATH"] == "/usr/local/cuda/lib64/stubs:/x"
    assert env["TORCH_CUDA_ARCH_LIST"] == "9.0a;12.0a"
    assert env["MAX_JOBS"].isdigit()
    assert env["PYTHONHASHSEED"] == "0"  # setup.py's set-ordered -gencode list: same every build
    assert env["ODD"] == 'a "b" $HOME `x` it\'s'  # literals stay literal
    assert env["WHEELFACTORY_BUILD_START"].isdigit()  # the one $(...) is evaluated
    runner = evaluate_in_cibuildwheel(environment, {**outer, "NVCC_APPEND_FLAGS": "--threads 4"})
    assert runner["NVCC_APPEND_FLAGS"].split()[-4:] == ["--threads", "4", "--compress-mode=size", "-std=c++20"]


def test_aarch64_job_uses_the_aarch64_image():
    j = job(id="x-cu130-torch2.14-linux_aarch64", machine="aarch64", runner="ubuntu-24.04-arm",
            cibw_build="cp312-manylinux_aarch64")  # fmt: skip
    env = cibw.cibw_env(cibw.parse_job(j), recipe=demo_recipe())
    assert env["CIBW_MANYLINUX_AARCH64_IMAGE"] == "pytorch/manylinuxaarch64-builder:cuda13.0"
    assert env["CIBW_ARCHS"] == "aarch64"


def test_linux_container_gets_the_host_variables_the_finish_stage_reads(monkeypatch):
    """cibuildwheel runs the repair step in a container that sees only CIBW_ENVIRONMENT
    (and the variables environment-pass names): without them every Linux wheel's guard
    named no index and its record no CI run. Checked with cibuildwheel's own options."""
    from cibuildwheel.options import CommandLineArguments, compute_options

    monkeypatch.chdir(ROOT)
    settings = cibw.cibw_env(cibw.parse_job(job()), recipe=load_recipe("tests/fixtures/quirky_ext.toml"))
    host = {**settings, "PATH": os.environ.get("PATH", ""),
            "WHEELFACTORY_INDEX_URL": "https://idx.example.org/w", "GITHUB_RUN_ID": "42"}  # fmt: skip
    options = compute_options("linux", CommandLineArguments.defaults(), host)
    container = options.build_options("cp311-manylinux_x86_64").environment.as_dictionary(
        prev_environment={"PATH": os.environ.get("PATH", "")}
    )
    assert container["WHEELFACTORY_INDEX_URL"] == "https://idx.example.org/w"
    assert container["GITHUB_RUN_ID"] == "42"
    # Windows builds run on the host, which passes everything: no container setting there.
    windows = cibw.cibw_env(cibw.parse_job(windows_job()), recipe=load_recipe("tests/fixtures/quirky_ext.toml"))
    assert "CIBW_ENVIRONMENT_PASS_LINUX" not in windows


def test_windows_job_settings():
    env = cibw.cibw_env(cibw.parse_job(windows_job()), recipe=demo_recipe())
    assert env["CIBW_ARCHS"] == "AMD64"
    assert not any(k.startswith("CIBW_MANYLINUX") for k in env)
    assert env["WHEELFACTORY_WINDOWS_CUDA"] == "12.8.1"
    # the repair tools go to the factory's Python (before-all), not the build Python
    assert "delvewheel>=1.12" in env["CIBW_BEFORE_ALL"]
    assert "auditwheel" not in env["CIBW_BEFORE_ALL"]
    assignments = assignments_of(env["CIBW_ENVIRONMENT"])
    assert assignments["CL"] == "/permissive- /Zc:__cplusplus"  # Recipe.build.msvc_flags
    assert assignments["DISTUTILS_USE_SDK"] == "1"
    assert "LIBRARY_PATH" not in assignments and "CUDA_HOME" not in assignments
    # cmd.exe runs these: no single quotes, every '>' inside double quotes
    for key in ("CIBW_BEFORE_ALL", "CIBW_BEFORE_BUILD", "CIBW_REPAIR_WHEEL_COMMAND", "CIBW_TEST_COMMAND"):
        assert "'" not in env[key]
        for word in env[key].split():
            assert ">" not in word or (word.startswith('"') and word.endswith('"')), (key, word)


def test_windows_without_toolkit_is_refused():
    with pytest.raises(ConfigError, match="has no windows-amd64 toolkit"):
        cibw.cibw_env(cibw.parse_job(windows_job(cuda="13.4")), recipe=demo_recipe())


def test_unknown_cuda_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match=r"add \[cuda\.\"10\.2\"\]"):
        cibw.cibw_env(cibw.parse_job(job(cuda="10.2")), recipe=demo_recipe())


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"os": "macos", "machine": "arm64"}, "not one CI builds"),
        ({"cibw_build": "cp312-win_amd64"}, "does not fit linux-x86_64"),
        ({"cibw_build": ""}, "empty"),
        ({"targets": ""}, "no GPU targets"),
    ],
)
def test_bad_jobs(over, match):
    with pytest.raises(ConfigError, match=match):
        cibw.parse_job(job(**over))


def test_missing_keys_and_bad_json():
    raw = job()
    del raw["runner"]
    with pytest.raises(ConfigError, match="lacks runner"):
        cibw.parse_job(raw)
    with pytest.raises(ConfigError, match="not JSON"):
        cibw.parse_job("{nope")


def test_fixes_that_differ_between_pythons_are_refused():
    text = RECIPE + '[[fix]]\nwhy = "py313 only"\nwhen = { python = ">=3.13" }\nenv = { X = "1" }\n'
    recipe = parse_recipe(text, Path("recipes/demo.toml"))
    j = cibw.parse_job(job(pythons=["3.12", "3.13"], cibw_build="cp312-manylinux_x86_64 cp313-manylinux_x86_64"))
    with pytest.raises(ConfigError, match="split the job"):
        cibw.cibw_env(j, recipe=recipe)


def test_job_from_the_real_planner_is_accepted():
    from wheelfactory import plan as planning

    recipe = load_recipe(ROOT / "tests/fixtures/quirky_ext.toml")
    result = planning.plan([recipe], releases.load(), None, root=ROOT)
    jobs = [j for m in result.github_matrices(256)["matrices"] for j in m["include"]]
    assert jobs
    for raw in jobs:
        j = cibw.parse_job(json.dumps(raw))
        env = cibw.cibw_env(j, recipe=recipe)
        assert env["CIBW_BUILD"] == raw["cibw_build"]
        assert f"torch=={raw['torch']}+cu" in env["CIBW_TEST_REQUIRES"]


def test_github_env_rendering_uses_heredoc_for_multiline():
    text = cibw.render_github_env({"A": "1", "B": "x\ny"})
    lines = text.splitlines()
    assert lines[0] == "A=1"
    assert lines[1].startswith("B<<WF_EOF_")
    delim = lines[1].split("<<", 1)[1]
    assert lines[2:] == ["x", "y", delim]
    with pytest.raises(ConfigError):
        cibw.render_github_env({"BAD NAME": "1"})


def test_ci_table_rejects_a_wrong_image(tmp_path):
    text = cibw.resources.CI_IMAGES.read_text().replace(
        '"pytorch/manylinux2_28-builder:cuda12.8"', '"pytorch/manylinux2_28-builder:cuda12.6"'
    )
    with pytest.raises(ConfigError, match="not the cuda12.8 image"):
        cibw.parse_ci_table(text, tmp_path / "ci-images.toml")


def test_no_gpu_shim_recipe_gets_the_shim_in_ci_but_not_in_the_smoke_test():
    recipe = parse_recipe(RECIPE.replace("links-driver = true", "no-gpu-shim = true"), Path("recipes/demo.toml"))
    env = cibw.cibw_env(cibw.parse_job(job()), recipe=recipe)
    assert "python -m wheelfactory gpu-shim --out /tmp/wheelfactory-gpu-shim" in env["CIBW_BEFORE_BUILD"]
    assignments = assignments_of(env["CIBW_ENVIRONMENT"])
    assert assignments["PYTHONPATH"] == "/tmp/wheelfactory-gpu-shim"  # no empty entry (cwd)
    assert assignments["WHEELFACTORY_GPU_SHIM_CAPABILITY"] == "12.0"  # the highest target
    assert env["CIBW_TEST_ENVIRONMENT"] == 'WHEELFACTORY_GPU_SHIM_CAPABILITY=""'
    # a recipe without the shim gets none of it
    plain = cibw.cibw_env(cibw.parse_job(job()), recipe=demo_recipe())
    assert "gpu-shim" not in plain["CIBW_BEFORE_BUILD"] and "CIBW_TEST_ENVIRONMENT" not in plain


def test_gpu_shim_command_writes_an_inactive_by_default_sitecustomize(tmp_path):
    import os
    import subprocess
    import sys

    from wheelfactory.cli import main

    assert main(["gpu-shim", "--out", str(tmp_path / "shim")]) == 0
    shim = tmp_path / "shim" / "sitecustomize.py"
    assert shim.is_file()
    probe = "import sys; print(any(type(f).__name__ == '_Finder' for f in sys.meta_path))"
    for cap, active in (("12.0", "True"), ("", "False")):
        env = {**os.environ, "PYTHONPATH": str(shim.parent), "WHEELFACTORY_GPU_SHIM_CAPABILITY": cap}
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == active
