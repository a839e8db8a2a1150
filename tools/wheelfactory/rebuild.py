"""Rebuild a wheel from its build record and compare the two byte for byte.

A wheel whose record says ``reproducible`` (Linux builds: nvcc seeded per file, the tree's
path mapped, fixed zip timestamps and order) must come out of the same inputs with the
same bytes, in any folder. ``rebuild_request`` turns the record back into a build request
(the recipe, checked by its sha256; the torch, CUDA, Python, targets, manylinux policy and
options the record names); ``first_difference`` names the first member of the zip that
differs, so a failed check says where to look.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

from wheelfactory import arch, buildenv, wheelfile
from wheelfactory.errors import ConfigError, NotReproducedError
from wheelfactory.pipeline import BuildRequest
from wheelfactory.recipe import load_recipe, repo_root
from wheelfactory.record import RECORD_NAME, BuildRecord


@dataclass(frozen=True, kw_only=True)
class Difference:
    member: str  # the zip member that differs ("" when the archives differ outside members)
    what: str  # "content", "only in the original", "timestamp", ...

    def __str__(self) -> str:
        return f"{self.member}: {self.what}" if self.member else self.what


def first_difference(original: Path, rebuilt: Path) -> Difference | None:
    """What first differs between two wheels: a member only one has, a member at another
    place, then (in zip order) a member's content, timestamp or mode; None when the files
    are byte-identical."""
    if original.read_bytes() == rebuilt.read_bytes():
        return None
    with (
        wheelfile.open_archive(original) as (a, _),
        wheelfile.open_archive(rebuilt) as (b, _),
    ):
        names_a, names_b = a.namelist(), b.namelist()
        in_a, in_b = set(names_a), set(names_b)
        for name_a, name_b in zip_longest(names_a, names_b):
            if name_a == name_b:
                continue
            if name_a is not None and name_a not in in_b:
                return Difference(member=name_a, what="only in the original")
            if name_b is not None and name_b not in in_a:
                return Difference(member=name_b, what="only in the rebuild")
            return Difference(member=name_a or name_b or "", what="at another place in the zip")
        for info in a.infolist():
            other = b.getinfo(info.filename)
            ours, theirs = a.read(info), b.read(other)
            if ours != theirs:
                what = "content differs"
                if info.filename.endswith("/" + RECORD_NAME):
                    what += f" ({_record_keys_differing(ours, theirs)})"
                return Difference(member=info.filename, what=what)
            for field in ("date_time", "external_attr", "compress_type", "extra", "comment"):
                if getattr(info, field) != getattr(other, field):
                    return Difference(member=info.filename, what=f"zip {field} differs")
    return Difference(member="", what="the zip archives differ outside their members")


def _record_keys_differing(ours: bytes, theirs: bytes) -> str:
    """Which keys of two build records differ ("env.MAX_JOBS, tools"), to say why."""
    try:
        a, b = json.loads(ours), json.loads(theirs)
    except ValueError:
        return "not JSON"
    keys = sorted(set(a) | set(b))
    differing = [k for k in keys if a.get(k) != b.get(k)]
    named = []
    for key in differing:
        if key == "env" and isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
            names = sorted(set(a[key]) | set(b[key]))
            named += [f"env.{n}" for n in names if a[key].get(n) != b[key].get(n)]
        else:
            named.append(key)
    return "keys " + ", ".join(named) if named else "formatting"


def check_same(original: Path, rebuilt: Path) -> None:
    """NotReproducedError naming the first differing member, unless byte-identical."""
    diff = first_difference(original, rebuilt)
    if diff is not None:
        msg = (
            f"the rebuild of {original.name} differs from it: {diff}; compare the two with"
            " diffoscope, and see docs/build.md (Reproducible builds) for the usual causes"
        )
        raise NotReproducedError(msg)


def rebuild_request(
    record: BuildRecord,
    *,
    recipe_path: Path | None,
    out_dir: Path,
    work_dir: Path,
    cache: Path,
    torch_index_url: str | None,
) -> BuildRequest:
    """The build request that makes ``record``'s wheel again (its run facts included)."""
    if not record.reproducible:
        raise ConfigError(
            f"{record.package} {record.package_version} was not built reproducibly (its build"
            " record says reproducible: false): rebuild it with this wheelfactory on Linux first"
        )
    if recipe_path is None:
        if record.recipe is None:
            raise ConfigError("the build record names no recipe: pass --recipe FILE")
        recipe_path = repo_root() / record.recipe
    recipe = load_recipe(recipe_path)
    if record.recipe_sha256 and recipe.sha256 != record.recipe_sha256:
        raise ConfigError(
            f"{recipe_path} is not the recipe the wheel was built from (its sha256 differs from"
            " the build record's): check out the recipe's version of then, or pass --recipe FILE"
        )
    if record.python is None:
        raise ConfigError("the build record names no Python version: rebuild the wheel with this wheelfactory")
    main = record.sources[0] if record.sources else None
    source_dir = None
    if main is not None and main.kind == "local":
        source_dir = Path(main.pin.removeprefix("local:"))
    return BuildRequest(
        recipe=recipe,
        source_dir=source_dir,
        torch=record.torch.split("+")[0],
        cuda=record.cuda,
        python=buildenv.resolve_python(".".join(record.python.split(".")[:2])),
        targets=arch.parse_targets(",".join(record.targets)),
        out_dir=out_dir,
        torch_index_url=torch_index_url,
        cache=cache,
        work_dir=work_dir,
        plat=record.repair.policy if record.repair else None,
        verify=False,  # compared with the original, which was verified
        strip_debug=record.strip_debug,
        with_guard=record.guard,
        index_url=record.index_url,
    )
