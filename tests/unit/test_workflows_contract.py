"""The workflows and the CLI agree, and the workflows keep the security rules.

- every ``wheelfactory ...`` command in .github/workflows (and every one that
  ``cibw-env`` generates for cibuildwheel to run) parses with the CLI's own parser;
- every ``matrix.<field>`` the workflows read is a field the planner emits;
- actions are pinned by full commit SHA with a version comment; permissions are empty at
  the top and granted per job; no ``${{ }}`` expression is expanded inside ``run:``;
  checkouts do not persist credentials; pull-request builds reach no secrets.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml  # a test extra: CI installs it (a missing one fails, never skips)


from wheelfactory import plan as planning  # noqa: E402
from wheelfactory import releases  # noqa: E402
from wheelfactory.ci import cibw  # noqa: E402
from wheelfactory.cli import make_parser  # noqa: E402
from wheelfactory.recipe import load_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
# Values for shell variables in run: scripts (anything else becomes "x").
SAMPLE = {
    "RUN_ID": "123",
    "IN_OS": "linux",
    "IN_RECIPE": "recipes/sageattention.toml",
    "PR_RECIPE": "tests/fixtures/quirky_ext.toml",
    "RECIPE": "recipes/sageattention.toml",
    "INDEX_URL": "https://example.invalid/index/",
    "ATTESTATION_URL": "https://github.com/o/r/attestations/1",
}
_OPERATORS = {"&&", "||", ";", "|", "&"}
_REDIRECTS = {">", ">>", "<", "2>", "2>&1"}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def steps(workflow: dict):
    for job_id, job in workflow.get("jobs", {}).items():
        for step in job.get("steps", []) or []:
            yield job_id, job, step


def _expand_shell(text: str) -> str:
    """Give shell parameters sample values: ${X:+WORDS} -> WORDS (as if X is set), then
    "$X" / ${X} / $X -> SAMPLE[X]; ${{ expressions }} -> x."""
    text = re.sub(r"\$\{\{.*?\}\}", "x", text)
    while True:
        new = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\+([^{}]*)\}", r"\1", text)
        if new == text:
            break
        text = new
    text = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(%[^}]*)?\}", lambda m: SAMPLE.get(m.group(1), "x"), text)
    return re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*)", lambda m: SAMPLE.get(m.group(1), "x"), text)


def simple_commands(script: str) -> list[list[str]]:
    """Split a bash script into simple commands (argv lists), dropping redirections."""
    script = script.replace("\\\n", " ")
    out: list[list[str]] = []
    for line in script.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        lex = shlex.shlex(_expand_shell(line), posix=True, punctuation_chars=";&|<>")
        lex.whitespace_split = True
        current: list[str] = []
        skip_next = False
        for tok in lex:
            if skip_next:
                skip_next = False
                continue
            if tok in _OPERATORS:
                out.append(current)
                current = []
            elif tok in _REDIRECTS:
                skip_next = True
            else:
                current.append(tok)
        out.append(current)
    # "if cmd; then", "then cmd", "else cmd": drop the shell keywords in front
    cleaned = []
    for argv in out:
        while argv and argv[0] in ("if", "then", "else", "elif", "fi", "!"):
            argv = argv[1:]
        if argv:
            cleaned.append(argv)
    return cleaned


def wheelfactory_commands(argvs: list[list[str]]) -> list[list[str]]:
    found = []
    for argv in argvs:
        if argv[0] == "wheelfactory":
            found.append(argv[1:])
        elif argv[1:3] == ["-m", "wheelfactory"]:  # any interpreter: cibw-env names the factory's
            found.append(argv[3:])
    return found


def workflow_commands() -> list[tuple[str, list[str]]]:
    cmds = []
    for path in WORKFLOWS:
        for _, _, step in steps(load(path)):
            if "run" in step:
                for argv in wheelfactory_commands(simple_commands(step["run"])):
                    cmds.append((path.name, argv))
    return cmds


def planner_jobs() -> list[dict]:
    recipe = load_recipe(ROOT / "tests/fixtures/quirky_ext.toml")
    result = planning.plan([recipe], releases.load(), None, root=ROOT)
    return [j for m in result.github_matrices(256)["matrices"] for j in m["include"]]


def generated_commands() -> list[tuple[str, list[str]]]:
    """The commands cibw-env hands cibuildwheel (placeholders filled like cibuildwheel does)."""
    cmds = []
    recipe = load_recipe(ROOT / "tests/fixtures/quirky_ext.toml")
    fills = {"{wheel}": "/tmp/w/demo-1.0-cp312-cp312-linux_x86_64.whl", "{dest_dir}": "/tmp/out", "{project}": "/project"}
    for raw in planner_jobs()[:3]:
        env = cibw.cibw_env(cibw.parse_job(raw), recipe=recipe)
        for key in ("CIBW_BEFORE_BUILD", "CIBW_REPAIR_WHEEL_COMMAND", "CIBW_TEST_COMMAND"):
            text = env[key]
            for ph, value in fills.items():
                text = text.replace(ph, value)
            for argv in wheelfactory_commands(simple_commands(text)):
                cmds.append((key, argv))
    return cmds


def test_the_script_splitter_finds_commands():
    script = 'if [ "$A" = b ]; then\n  wheelfactory plan "$PR_RECIPE" --format github > plan.json\nfi\n' \
             'wheelfactory summary x >> "$GITHUB_STEP_SUMMARY" && python -m wheelfactory smoke w.whl'
    assert wheelfactory_commands(simple_commands(script)) == [
        ["plan", "tests/fixtures/quirky_ext.toml", "--format", "github"],
        ["summary", "x"],
        ["smoke", "w.whl"],
    ]


def test_workflows_call_wheelfactory():
    subcommands = {argv[0] for _, argv in workflow_commands()}
    # the steps the workflows are built around
    assert {"plan", "ci-matrix", "cibw-env", "source", "summary", "download",
            "release-check", "publish", "provenance", "watch"} <= subcommands  # fmt: skip


@pytest.mark.parametrize(("where", "argv"), workflow_commands() + generated_commands(), ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_every_invocation_parses(where, argv):
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse reports the problem on stderr
        pytest.fail(f"{where}: `wheelfactory {' '.join(argv)}` does not parse (exit {e.code})")
    assert args.command == argv[0]


def test_matrix_fields_the_workflows_read_are_emitted_by_the_planner():
    jobs = planner_jobs()
    assert jobs
    emitted = set.intersection(*(set(j) for j in jobs))
    read = set()
    for path in WORKFLOWS:
        read |= set(re.findall(r"\bmatrix\.([A-Za-z_][A-Za-z0-9_]*)", path.read_text()))
    assert read, "build-cells.yml reads matrix fields"
    assert read <= emitted, f"read but never emitted: {sorted(read - emitted)}"
    assert set(cibw.JOB_KEYS) <= emitted, f"cibw-env needs {sorted(set(cibw.JOB_KEYS) - emitted)}"


def test_actions_are_pinned_by_full_sha_with_a_version_comment():
    pattern = re.compile(r"^\s*-?\s*uses:\s*(\S+)(.*)$")
    seen = 0
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            m = pattern.match(line)
            if not m:
                continue
            ref, rest = m.groups()
            if ref.startswith("./"):
                continue  # a workflow of this repository, at the same commit
            seen += 1
            assert re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}", ref), f"{path.name}: {ref} is not SHA-pinned"
            assert re.search(r"#\s*v\d+\.\d+\.\d+", rest), f"{path.name}: {ref} lacks a '# vX.Y.Z' comment"
    assert seen >= 8


def test_least_privilege_and_no_expressions_in_run():
    for path in WORKFLOWS:
        wf = load(path)
        assert wf.get("permissions") == {}, f"{path.name}: top-level permissions must be {{}}"
        for job_id, job in wf["jobs"].items():
            assert "permissions" in job, f"{path.name}:{job_id} must grant its own permissions"
        for job_id, _, step in steps(wf):
            if "run" in step:
                assert "${{" not in step["run"], f"{path.name}:{job_id}: pass expressions through env:, not run:"
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, f"{path.name}:{job_id}"


def test_pull_request_builds_reach_no_secrets_and_never_publish():
    build = load(ROOT / ".github/workflows/build.yml")
    triggers = build[True] if True in build else build["on"]  # PyYAML reads `on:` as True
    assert "pull_request" in triggers and "pull_request_target" not in triggers
    for name in ("build.yml", "build-cells.yml"):
        assert not re.search(r"\$\{\{[^}]*\bsecrets\.", (ROOT / ".github/workflows" / name).read_text())
    publish_if = build["jobs"]["publish"]["if"]
    assert "github.event_name == 'workflow_dispatch'" in publish_if
    assert "refs/heads/main" in publish_if
    for job_id, job in build["jobs"].items():
        if job_id != "publish":
            perms = job.get("permissions", {})
            assert set(perms.values()) <= {"read"}, f"build.yml:{job_id} must be read-only: {perms}"


def test_publish_never_interleaves_and_attests():
    wf = load(ROOT / ".github/workflows/publish.yml")
    assert wf["concurrency"]["cancel-in-progress"] is False
    perms = wf["jobs"]["publish"]["permissions"]
    assert perms["id-token"] == "write" and perms["attestations"] == "write"
    uses = [s.get("uses", "") for _, _, s in steps(wf)]
    assert any(u.startswith("actions/attest@") for u in uses)
    assert any(u.startswith("actions/deploy-pages@") for u in uses)


def test_every_artifact_upload_overwrites_on_a_re_run():
    """upload-artifact v4+ refuses a name already taken in the run: without
    ``overwrite: true`` a re-run of a failed job fails at its upload."""
    uploads = [
        (path.name, step.get("name", step["uses"]))
        for path in WORKFLOWS
        for _, _, step in steps(load(path))
        if step.get("uses", "").startswith("actions/upload-artifact@")
    ]
    assert len(uploads) >= 2, uploads  # build-cells.yml's wheels, build.yml's gpu-checks
    for path in WORKFLOWS:
        for _, _, step in steps(load(path)):
            if step.get("uses", "").startswith("actions/upload-artifact@"):
                assert step["with"].get("overwrite") is True, (path.name, step["with"])
