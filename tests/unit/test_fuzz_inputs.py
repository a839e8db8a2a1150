"""Property-based fuzzing of what users hand the CLI: wheels (publish, verify's reading)
and recipes (plan). The property: a clean result, or exactly one ``ERROR:`` line and a
non-zero exit; never a traceback; and an index is byte-for-byte unchanged after an error.

The wheels start from a valid one and take the breaks a careless or hostile upload makes:
members dropped, duplicated or replaced with junk, a renamed .dist-info, odd build
records (deep nesting, NaN, wrong types), zip bombs (a member or RECORD inflating past the
caps of wheelfile.ArchiveLimits), member names that leave the install folder, other
spellings of a published name, truncated or bit-flipped archives; the property also holds
for unpacking them, which writes nothing outside its folder. The recipes start from the
real ones and take random values at random keys, or are random bytes.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import json
import shutil
import tempfile
import warnings
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import tomli_w
import tomllib
from _index_wheels import index_tree, make_wheel
from _records import record_json
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from wheelfactory import cli, label, wheelfile
from wheelfactory.errors import WheelfactoryError
from wheelfactory.verify import Expectation, check_tags_and_label

ROOT = Path(__file__).resolve().parents[2]
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


def run_cli(*argv: str) -> tuple[int, list[str]]:
    """Run the CLI in-process; any exception escaping main fails the test as it should."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(list(argv))
    return code, [line for line in err.getvalue().splitlines() if line.strip()]


def assert_clean(code: int, err: list[str]) -> None:
    if code != 0:
        errors = [line for line in err if line.startswith("ERROR: ")]
        assert len(errors) == 1, err
        assert "Traceback" not in "\n".join(err)


# --------------------------------------------------------------------------- wheels

BASE_DIR = Path(tempfile.mkdtemp(prefix="wf-fuzz-"))  # module level: hypothesis reuses it
atexit.register(shutil.rmtree, BASE_DIR, ignore_errors=True)
RECORD = record_json(torch="2.14.1", python_tag="py3-none", cuda="13.0")
PUBLISHED_WHEEL = make_wheel(BASE_DIR / "w", version="1.0.1", build_record=RECORD)
NEW_WHEEL = make_wheel(BASE_DIR / "w", version="1.0.2", build_record=RECORD)
ESCAPED = BASE_DIR / "escaped.py"  # an absolute member name: where an unchecked unpack writes it

# An index holding 1.0.1, so that other spellings of it meet a published file.
PUBLISHED = BASE_DIR / "index"
assert cli.main(["publish", str(PUBLISHED_WHEEL), "--index", str(PUBLISHED)]) == 0
PUBLISHED_TREE = index_tree(PUBLISHED)


def members_of(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def zip_bytes(items: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name: that is the point
        for name, data in items:
            zf.writestr(name, data)
    return buf.getvalue()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
junk = st.binary(max_size=200) | st.text(max_size=200).map(str.encode)
odd_records = (
    st.sampled_from([b"[" * 100_000 + b"]" * 100_000, b'{"torch": NaN}', b"Infinity"])
    | st.sampled_from([["9.0a", "sm_9x"], ["9.0a+PTX"], ["../x"], [90]]).map(  # targets
        lambda targets: json.dumps({**RECORD, "targets": targets}).encode()
    )
    | json_values.map(lambda v: json.dumps(v, allow_nan=True).encode())
    | st.dictionaries(st.sampled_from(sorted(RECORD)), json_values, max_size=3).map(
        lambda patch: json.dumps({**RECORD, **patch}, allow_nan=True).encode()
    )
)


@st.composite
def fuzzed_wheel(draw: st.DrawFn) -> tuple[bytes, str]:
    """(bytes, filename): a valid wheel (published or new) with one break, or none."""
    base = draw(st.sampled_from([PUBLISHED_WHEEL, NEW_WHEEL]))
    members = members_of(base)
    dist_info = next(n.split("/")[0] for n in members if ".dist-info/" in n)
    names = sorted(members)
    items = list(members.items())
    kind = draw(
        st.sampled_from(
            ["none", "none", "drop", "dup", "junk", "rename", "record", "huge"]
            + ["bomb", "record-bomb", "escape"]
        )
    )
    if kind == "drop":
        gone = draw(st.sampled_from(names))
        items = [(n, d) for n, d in items if n != gone]
    elif kind == "dup":
        items.append((draw(st.sampled_from(names)), draw(junk)))
    elif kind == "junk":
        hit = draw(st.sampled_from(names))
        items = [(n, draw(junk) if n == hit else d) for n, d in items]
    elif kind == "rename":
        new = draw(st.sampled_from(["demo_ext-1.0.3", "Demo_Ext-1.0.1+cu130torch2.14", "x"]))
        items = [(n.replace(dist_info, f"{new}.dist-info"), d) for n, d in items]
    elif kind == "record":
        items = [(n, d) for n, d in items if not n.endswith("wheelfactory-build.json")]
        items.append((f"{dist_info}/wheelfactory-build.json", draw(odd_records)))
    elif kind == "huge":  # a few KB compressed, MBs expanded
        items = [(n, d + b" " * (4 << 20) if n.endswith("/METADATA") else d) for n, d in items]
    elif kind == "bomb":  # a member past the ratio cap (issue 25: 1 MB -> 1 GiB was fatal)
        bombed = draw(st.sampled_from(["demo_ext/weights.bin", f"{dist_info}/RECORD"]))
        items.append((bombed, b"\0" * (8 << 20)))
    elif kind == "record-bomb":  # RECORD's rows, then MBs of blank lines (64 MiB took 5.1 GB)
        items = [(n, d + b"\n" * (8 << 20) if n.endswith("/RECORD") else d) for n, d in items]
    elif kind == "escape":  # member names an unpack would write outside its folder
        bad = ["../x.py", str(ESCAPED), "C:/x.py", "demo_ext/../../x.py", "demo_ext/__init__.py/x"]
        items.append((draw(st.sampled_from([*bad, "a//b"])), draw(junk)))
    data = zip_bytes(items)
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip"]))
    if damage == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "flip":
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
    filename = (
        base.name
        if draw(st.booleans())
        else draw(
            st.sampled_from(
                [
                    base.name.replace("demo_ext", "Demo_Ext"),
                    base.name.replace("demo_ext", "demo.ext"),
                    base.name.replace("1.0.1+", "1.0.1.0+"),
                    base.name.replace("1.0.2+", "1.0.1+"),
                    "demo_ext-1.0.1-py3-none-any.whl",  # no +cuXYZtorchX.Y label
                    "x.whl",
                ]
            )
        )
    )
    return data, filename


def publish_and_read(data: bytes, filename: str) -> tuple[int, str]:
    """Publish (a copy of the index) and read the wheel as verify does; check the property.
    Returns publish's exit code and its error's reason (for the statistics)."""
    with tempfile.TemporaryDirectory() as tmp:
        wheel = Path(tmp) / filename
        wheel.write_bytes(data)
        index = Path(tmp) / "index"
        shutil.copytree(PUBLISHED, index)
        code, err = run_cli("publish", str(wheel), "--index", str(index))
        assert_clean(code, err)
        after = index_tree(index)
        if code != 0:
            assert after == PUBLISHED_TREE, "a refused publish changed the index"
        else:  # accepted or already there: the index promises exactly these bytes
            manifest = json.loads(after["manifest.json"])
            entry = next(f for f in manifest["files"] if f["filename"] == filename)
            assert after[entry["url"]] == data
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        # verify's reading of the same file (all it does before building an import venv)
        try:
            wheel_read = wheelfile.read_wheel(wheel)
            if wheel_read.build_record is not None:
                check_tags_and_label(wheel_read, Expectation.of(wheel_read.build_record))
        except WheelfactoryError as e:
            assert "\n" not in str(e)
        # unpacking it (verify, release-check, relabel in repair) writes only inside its folder
        try:
            label.unpack(wheel, Path(tmp) / "unpacked")
        except WheelfactoryError as e:
            assert "\n" not in str(e)
        assert {p.name for p in Path(tmp).iterdir()} <= {filename, "index", "unpacked"}
        assert not ESCAPED.exists()
        reason = err[-1].split(": ")[-1 if "refusing" not in err[-1] else 2] if code else "ok"
        return code, reason[:50]


@FUZZ
@given(fuzzed_wheel())
def test_publish_and_verify_answer_cleanly(wheel: tuple[bytes, str]) -> None:
    event(publish_and_read(*wheel)[1])  # --hypothesis-show-statistics lists the reasons


def test_the_property_sees_both_outcomes() -> None:
    """The property's checker on a wheel it must accept and on ones it must refuse."""
    assert publish_and_read(NEW_WHEEL.read_bytes(), NEW_WHEEL.name)[0] == 0
    assert publish_and_read(NEW_WHEEL.read_bytes(), PUBLISHED_WHEEL.name)[0] != 0  # other bytes
    respelled = PUBLISHED_WHEEL.name.replace("1.0.1+", "1.0.1.0+")
    assert publish_and_read(PUBLISHED_WHEEL.read_bytes(), respelled)[0] != 0


# --------------------------------------------------------------------------- manifests, journals

# What a hand or an attacker writes into an index's own files: paths meant to escape it,
# numbers no JSON reader holds, bools for ints, targets nothing parses, another sha256.
hostile = st.sampled_from(
    [
        "/../../../victim", "../victim", "..\\victim", "C:victim", "2.15/../../..", "2.15\n",
        10**400, -1, True, 1.5, "f" * 64, ["/../../../victim"], ["2.15", "../../x"],
        {"targets": ["sm_bogus"]}, {"targets": "9.0a"}, "awaiting a GPU check", None,
    ]
) | json_values  # fmt: skip
ENTRY_KEYS = sorted(json.loads(PUBLISHED_TREE["manifest.json"])["files"][0])
journal_paths = st.sampled_from(
    ["../victim", "/tmp/victim", "..\\victim", "C:victim", "files/../../victim", "index.html", ""]
) | st.text(max_size=12)
op_names = st.sampled_from(["delete", "replace", "chmod"]) | json_values
journal_ops = st.lists(
    st.tuples(op_names, journal_paths, journal_paths).map(
        lambda t: list(t[:2]) if t[0] == "delete" else list(t)
    ),
    max_size=3,
)


@st.composite
def fuzzed_index(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    """(manifest.json, journal or None): the published index's, with one field of its entry
    (or of the manifest) replaced, and now and then a journal left behind."""
    manifest = json.loads(PUBLISHED_TREE["manifest.json"])
    if draw(st.booleans()):
        manifest["files"][0][draw(st.sampled_from(ENTRY_KEYS))] = draw(hostile)
    else:
        manifest[draw(st.sampled_from(["gpu_gate", "index_url", "files"]))] = draw(hostile)
    journal = None
    if draw(st.integers(0, 2)) == 0:
        state = draw(st.sampled_from(["commit", "prepare", "other"]))
        journal = json.dumps({"state": state, "ops": draw(journal_ops)}).encode()
    return json.dumps(manifest).encode(), journal


def rerender_and_yank(manifest: bytes, journal: bytes | None) -> str:
    """Re-render and yank an index with an edited manifest (and a journal): one ERROR line
    or success; nothing outside the index touched; a refused run changes nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        index, victim = Path(tmp) / "index", Path(tmp) / "victim"
        shutil.copytree(PUBLISHED, index)
        victim.write_text("outside the index")
        (index / "manifest.json").write_bytes(manifest)
        if journal is not None:
            (index / ".wheelfactory-journal.json").write_bytes(journal)
        for argv in (["publish"], ["yank", PUBLISHED_WHEEL.name, "--reason", "fuzz"]):
            before = index_tree(index)
            code, err = run_cli(*argv, "--index", str(index))
            assert_clean(code, err)
            assert sorted(p.name for p in Path(tmp).iterdir()) == ["index", "victim"]
            assert victim.read_text() == "outside the index", argv
            if code != 0:
                # (a journal inside the index is first recovered: an earlier publish's work)
                if journal is None or "journal" in err[-1]:
                    assert index_tree(index) == before, f"a refused {argv[0]} changed the index"
                return err[-1]
        return "ok"


@settings(FUZZ, max_examples=60)  # each example re-renders twice: keep the unit tier quick
@given(fuzzed_index())
def test_an_edited_index_answers_cleanly(edited: tuple[bytes, bytes | None]) -> None:
    event(rerender_and_yank(*edited).split(": ")[-1][:50])


def test_the_index_property_sees_both_outcomes() -> None:
    manifest = PUBLISHED_TREE["manifest.json"]
    assert rerender_and_yank(manifest, None) == "ok"
    escape = json.dumps({"state": "commit", "ops": [["delete", "../victim"]]}).encode()
    assert "journal" in rerender_and_yank(manifest, escape)
    covers = json.loads(manifest)
    covers["files"][0]["covers"] = ["/../../../victim"]
    assert "covers entry" in rerender_and_yank(json.dumps(covers).encode(), None)


# --------------------------------------------------------------------------- recipes

RECIPES = sorted((ROOT / "recipes").glob("*.toml"))
toml_values = st.recursive(
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(min_size=1, max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*prefix, i))
    return found


@st.composite
def fuzzed_recipe(draw: st.DrawFn) -> bytes:
    source = draw(st.sampled_from(RECIPES))
    if draw(st.integers(0, 9)) == 0:  # random bytes now and then: not UTF-8, not TOML
        return draw(st.binary(max_size=300))
    data = tomllib.loads(source.read_text())
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(data)))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            parent[path[-1]] = draw(toml_values)
        elif isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    return tomli_w.dumps(data).encode()


@FUZZ
@given(fuzzed_recipe())
def test_plan_answers_cleanly_for_any_recipe(text: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(ROOT / "recipes" / "checks", Path(tmp) / "checks")  # [gpu-check] scripts
        recipe = Path(tmp) / "fuzzed.toml"
        recipe.write_bytes(text)
        code, err = run_cli("plan", str(recipe), "--format", "json")
        assert_clean(code, err)
        event("ok" if code == 0 else err[-1].split("fuzzed.toml: ")[-1][:40])
