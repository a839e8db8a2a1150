"""Wheel anatomy: read a wheel file once and check it is one pip would install.

``read_wheel(path)`` is the one validator that publish, verify and the CI steps use. It
refuses, with one line each: a missing file or a non-zip; an archive over the caps of
``ArchiveLimits`` (member count, member size, total size, compression ratio: a small
wheel can expand to a huge one), checked from the zip's directory before any member is
read; duplicate or escaping member names; not exactly one ``.dist-info`` folder, or one
whose name disagrees with the filename; a missing ``WHEEL`` or ``METADATA``; METADATA,
WHEEL, RECORD or build record over their own small caps; METADATA whose name or version
disagrees with the filename; an invalid Requires-Python or Requires-Dist; a RECORD that
misses a file, lists one that is not there, or whose hash or size is wrong (every member
is hashed, streamed); and a build record that is not a strict, well-typed record.py
``BuildRecord``. Every check is linear in the number of members.

``open_archive(path)`` is its first half (the zip and its member names, under the caps):
what anything that unpacks a wheel (label.unpack, repair) opens it with.

The other helpers are what the pipeline needs to know about a wheel's insides: its
extension modules, its torch requirement, RECORD hashes for repacking.
"""

from __future__ import annotations

import base64
import csv
import email.message
import email.parser
import email.policy
import hashlib
import io
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelfactory import naming
from wheelfactory.errors import ConfigError, WheelfactoryError
from wheelfactory.naming import TorchPin
from wheelfactory.record import RECORD_NAME, BuildRecord, RecordError


@dataclass(frozen=True, kw_only=True)
class ArchiveLimits:
    """What a wheel may hold, checked from the zip's central directory before any member
    is read (zipfile never inflates a member past the size the directory declares, so the
    declared sizes bound the work). Measured on real wheels (2026-12): torch 2.14.1 has
    13,043 members, 1.1 GiB expanded, its largest 479 MiB, at most 24x compressed (members
    over 1 MiB); the nvidia-* CUDA 13 wheels have 7-64 members, up to 921 MiB expanded,
    the largest 516 MiB, at most 5x; the factory's own wheels, hundreds of members and
    under 100 MiB. Deflate can reach about 1,030x, so a 1 MB wheel can claim 1 GiB."""

    members: int = 20_000  # 1.5x torch's count; our wheels have hundreds
    member_bytes: int = 2 << 30  # 4x the largest CUDA library seen
    total_bytes: int = 4 << 30  # 4x the largest CUDA wheel seen
    ratio: int = 100  # 4x torch's highest; a member (or the whole file) expanding more is a bomb
    ratio_floor: int = 1 << 20  # below this size, a member (or archive) may compress any amount
    metadata_bytes: int = 1 << 20  # METADATA, WHEEL, build record: PyPI's largest are a few 100 KB
    record_bytes: int = 16 << 20  # RECORD: about 200 bytes a member, 20,000 members = 4 MiB
    directory_bytes: int = 4 << 20  # the zip's central directory: torch's is 1.2 MB (94 B a member)


LIMITS = ArchiveLimits()
_TOO_BIG = (
    "refusing it unread (a zip bomb?); rebuild the wheel, or raise wheelfile.ArchiveLimits"
    " if a real one needs more"
)
_HASHES = ("sha256", "sha384", "sha512")  # PEP 376/427: md5 and sha1 are not allowed
# Python extension modules: name.cpython-311-x86_64-linux-gnu.so, name.abi3.so, name.so,
# name.cp311-win_amd64.pyd, name.pyd
EXTENSION_SUFFIXES = (".so", ".pyd")
_REBUILD = "rebuild the wheel (do not edit wheels by hand)"


class WheelError(WheelfactoryError):
    """A wheel file is malformed: pip would refuse it, or it breaks a rule of the index."""

    return_code = 8


@dataclass(frozen=True, kw_only=True)
class Wheel:
    """What a checked wheel holds."""

    path: Path
    label: naming.WheelLabel  # what its filename says
    dist_info: str  # "sageattention-2.2.0+cu130torch2.14.dist-info"
    files: tuple[str, ...]  # member names (no folders)
    metadata_bytes: bytes
    metadata: email.message.Message
    wheel_meta: email.message.Message
    build_record: BuildRecord | None

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def requires_python(self) -> str | None:
        value = self.metadata.get("Requires-Python")
        return value.strip() if value else None

    def requires(self, project: str) -> list[Requirement]:
        """The unconditional Requires-Dist entries for ``project`` ("torch")."""
        reqs = [Requirement(r) for r in self.metadata.get_all("Requires-Dist") or []]
        return [r for r in reqs if canonicalize_name(r.name) == project and r.marker is None]

    def extension_modules(self) -> tuple[str, ...]:
        return extension_modules(self.files)


def _refuse(path: Path, why: str, fix: str = _REBUILD) -> WheelError:
    return WheelError(f"{path.name}: {why}; {fix}")


def record_hash(data: bytes) -> str:
    """A RECORD hash field: ``sha256=<urlsafe base64, no padding>``."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def parse_headers(raw: bytes) -> email.message.Message:
    """METADATA / WHEEL (RFC 822 style headers)."""
    return email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)


def extension_modules(names: Iterable[str]) -> tuple[str, ...]:
    """Dotted names of the extension modules among a wheel's member names.

    ``pkg/_ext.cpython-311-x86_64-linux-gnu.so`` -> ``pkg._ext``; ``mod.cp311-win_amd64.pyd``
    -> ``mod``. Libraries a repairer vendored (``<pkg>.libs/``, ``lib*.so``) and files under
    ``.dist-info``/``.data`` are not modules.
    """
    modules = set()
    for name in names:
        parts = name.split("/")
        if parts[0].endswith((".libs", ".dist-info", ".data")) or not name.endswith(EXTENSION_SUFFIXES):
            continue
        base = parts[-1]
        if base.startswith("lib") and ".so." not in base and base.count(".") == 1:
            continue  # a plain shared library (libfoo.so), not a module
        stem = base.split(".", 1)[0]
        modules.add(".".join([*parts[:-1], stem]))
    return tuple(sorted(modules))


def _read_limited(zf: zipfile.ZipFile, name: str, limit: int, path: Path) -> bytes:
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise _refuse(path, f"{name} is {info.file_size} bytes, over the {limit} limit")
    with zf.open(info) as fh:
        data = fh.read(limit + 1)  # the header's size may lie: never read more
    if len(data) > limit:
        raise _refuse(path, f"{name} is over the {limit} byte limit")
    return data


def check_members(path: Path, zf: zipfile.ZipFile, limits: ArchiveLimits = LIMITS) -> list[str]:
    """The file names (no folders) of a zip whose directory is within ``limits`` and whose
    names are unique and stay inside the install folder; else WheelError. One pass, from
    the central directory only: no member is read."""
    infos = zf.infolist()
    if len(infos) > limits.members:
        why = f"it has {len(infos)} members, over the {limits.members} limit"
        raise _refuse(path, why, _TOO_BIG)
    seen: set[str] = set()
    folders: set[str] = set()  # every parent folder of a file: "a/b/c" -> "a", "a/b"
    total = 0
    for info in infos:
        name = info.filename
        if name in seen:
            raise _refuse(path, f"it holds {name} twice (pip refuses duplicate members)")
        seen.add(name)
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            raise _refuse(path, f"member {name!r} escapes the install folder")
        if any(p in ("", ".") for p in parts[:-1]) or parts[-1] == ".":
            raise _refuse(path, f"member {name!r} is not a plain relative path")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
        size = info.file_size
        if size > limits.member_bytes:
            why = f"{name!r} expands to {size} bytes, over the {limits.member_bytes} byte limit"
            raise _refuse(path, why, _TOO_BIG)
        if size > limits.ratio_floor and size > limits.ratio * info.compress_size:
            ratio = size // max(info.compress_size, 1)
            why = f"{name!r} expands {ratio}x, over the {limits.ratio}x ratio limit"
            raise _refuse(path, why, _TOO_BIG)
        total += size
    if total > limits.total_bytes:
        why = f"it expands to {total} bytes, over the {limits.total_bytes} byte limit"
        raise _refuse(path, why, _TOO_BIG)
    # the ratio of the whole file too: the directory's compressed sizes are the sender's word
    on_disk = path.stat().st_size
    if total > limits.ratio_floor and total > limits.ratio * on_disk:
        why = f"it expands {total // max(on_disk, 1)}x, over the {limits.ratio}x ratio limit"
        raise _refuse(path, why, _TOO_BIG)
    files = [i.filename for i in infos if not i.filename.endswith("/")]
    clash = next((n for n in files if n in folders), None)
    if clash is not None:
        raise _refuse(path, f"member {clash!r} is both a file and a folder")
    return files


def _check_directory_size(path: Path, limits: ArchiveLimits) -> None:
    """Refuse from the end-of-central-directory record alone, before zipfile parses the
    directory into one object a member (a 50 MB zip of a million empty members costs
    seconds and hundreds of MB to parse). The count may lie; the byte size bounds it."""
    with path.open("rb") as fh:
        end = zipfile._EndRecData(fh)  # type: ignore[attr-defined]  # stable since Python 2
    if end is None:
        return  # not a zip: zipfile.ZipFile says so next
    count, size = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
    if count > limits.members:
        raise _refuse(path, f"it has {count} members, over the {limits.members} limit", _TOO_BIG)
    if size > limits.directory_bytes:
        why = f"its zip directory is {size} bytes, over the {limits.directory_bytes} byte limit"
        raise _refuse(path, why, _TOO_BIG)


@contextmanager
def open_archive(
    path: Path, limits: ArchiveLimits = LIMITS
) -> Iterator[tuple[zipfile.ZipFile, list[str]]]:
    """Open a wheel as a zip checked by ``check_members``: (the zip, its file names). A zip
    that is corrupt, on opening or while it is read inside the ``with``, is a WheelError."""
    try:
        _check_directory_size(path, limits)
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise _refuse(path, f"it is not a valid zip archive ({e})", "rebuild or re-download it") from e
    try:
        with zf:
            yield zf, check_members(path, zf, limits)
    except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as e:
        raise _refuse(path, f"the archive is corrupt ({e})", "rebuild or re-download it") from e


def archive_files(path: Path, limits: ArchiveLimits = LIMITS) -> list[str]:
    """The file names of a wheel whose zip passes ``check_members`` (no member is read)."""
    with open_archive(path, limits) as (_zf, files):
        return files


def _dist_info(path: Path, files: Sequence[str], label: naming.WheelLabel) -> str:
    found = sorted({n.split("/")[0] for n in files if n.split("/")[0].endswith(".dist-info")})
    if len(found) != 1:
        raise _refuse(path, f"it has {len(found)} .dist-info folders, not 1")
    dist_info = found[0]
    name, _, version = dist_info[: -len(".dist-info")].rpartition("-")
    try:
        same = canonicalize_name(name) == label.project and Version(version) == Version(label.version)
    except InvalidVersion:
        same = False
    if not same:
        raise _refuse(path, f"its {dist_info} folder does not match the filename's name and version")
    return dist_info


def check_record(
    zf: zipfile.ZipFile, dist_info: str, files: Sequence[str], limits: ArchiveLimits = LIMITS
) -> list[str]:
    """Problems with RECORD: a file missing from it, an entry for a missing file, a hash
    or size that does not match (every member is hashed, in chunks). [] when it is right.
    RECORD is parsed as it streams, and holds at most one row per member."""
    record_name = f"{dist_info}/RECORD"
    present = set(files)  # membership tests below: a set keeps them linear
    if record_name not in present:
        return [f"{record_name} is missing"]
    size = zf.getinfo(record_name).file_size
    if size > limits.record_bytes:
        return [f"{record_name} is {size} bytes, over the {limits.record_bytes} limit"]
    unsigned = {record_name, f"{dist_info}/RECORD.jws", f"{dist_info}/RECORD.p7s"}
    recorded: dict[str, tuple[str, str]] = {}
    try:
        with zf.open(record_name) as raw:
            for row in csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline="")):
                if not row:
                    continue
                if len(row) != 3:
                    return [f"RECORD row {row[:3]!r} does not have 3 fields"]
                if len(recorded) >= limits.members:
                    return [f"RECORD has over {limits.members} rows, the member limit"]
                recorded[row[0]] = (row[1], row[2])
    except (UnicodeDecodeError, csv.Error) as e:
        return [f"RECORD cannot be read ({e})"]
    problems = [
        f"{n} is not listed in RECORD" for n in files if n not in recorded and n not in unsigned
    ]
    for name, (digest, size_field) in recorded.items():
        if name in unsigned:
            continue
        if name not in present:
            problems.append(f"RECORD lists {name}, which is not in the wheel")
            continue
        algo, _, expected = digest.partition("=")
        if algo not in _HASHES or not expected:
            problems.append(f"RECORD entry for {name} has no sha256 hash")
            continue
        h = hashlib.new(algo)
        length = 0
        with zf.open(name) as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
                length += len(chunk)
        if base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode() != expected:
            problems.append(f"the hash of {name} does not match RECORD")
        elif size_field and size_field != str(length):
            problems.append(f"the size of {name} does not match RECORD")
    return problems


def read_wheel(
    path: str | Path, *, check_hashes: bool = True, limits: ArchiveLimits = LIMITS
) -> Wheel:
    """Open and check a wheel (see the module docstring); raise WheelError naming the problem."""
    path = Path(path)
    try:
        label = naming.parse_wheel(path.name)
    except ConfigError as e:
        raise WheelError(str(e)) from e
    if not path.is_file():
        raise WheelError(f"{path}: no such file; pass the path of a built wheel")
    try:
        with open_archive(path, limits) as (zf, files):
            dist_info = _dist_info(path, files, label)
            for needed in ("WHEEL", "METADATA"):
                if f"{dist_info}/{needed}" not in files:
                    raise _refuse(path, f"{dist_info}/{needed} is missing")
            raw_wheel = _read_limited(zf, f"{dist_info}/WHEEL", limits.metadata_bytes, path)
            wheel_meta = parse_headers(raw_wheel)
            raw_meta = _read_limited(zf, f"{dist_info}/METADATA", limits.metadata_bytes, path)
            if check_hashes:
                problems = check_record(zf, dist_info, files, limits)
                if problems:
                    raise _refuse(path, problems[0])
            record = None
            if f"{dist_info}/{RECORD_NAME}" in files:
                raw = _read_limited(zf, f"{dist_info}/{RECORD_NAME}", limits.metadata_bytes, path)
                try:
                    record = BuildRecord.loads(raw, where=f"{path.name}: {RECORD_NAME}")
                except RecordError as e:
                    raise WheelError(str(e)) from e
    except OSError as e:  # the file went away or cannot be read while it is checked
        raise _refuse(path, f"it cannot be read ({e})", "rebuild or re-download it") from e
    if not wheel_meta.get("Wheel-Version") or not wheel_meta.get_all("Tag"):
        raise _refuse(path, f"{dist_info}/WHEEL lacks Wheel-Version or Tag lines")
    metadata = parse_headers(raw_meta)
    _check_metadata(path, metadata, label)
    return Wheel(
        path=path,
        label=label,
        dist_info=dist_info,
        files=tuple(files),
        metadata_bytes=raw_meta,
        metadata=metadata,
        wheel_meta=wheel_meta,
        build_record=record,
    )


def _check_metadata(path: Path, msg: email.message.Message, label: naming.WheelLabel) -> None:
    name, version = msg.get("Name"), msg.get("Version")
    if not name or canonicalize_name(name) != label.project:
        raise _refuse(path, f"METADATA names {name!r}, the filename {label.project!r}")
    try:
        same_version = Version(version or "") == Version(label.version)
    except InvalidVersion:
        same_version = False
    if not same_version:
        raise _refuse(path, f"METADATA version {version!r} differs from the filename's {label.version!r}")
    requires_python = msg.get("Requires-Python")
    if requires_python is not None:
        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier as e:
            raise _refuse(path, f"Requires-Python {requires_python!r} is invalid") from e
    for line in msg.get_all("Requires-Dist") or []:
        try:
            Requirement(line)
        except InvalidRequirement as e:
            raise _refuse(path, f"Requires-Dist {line!r} is invalid ({e})") from e


def torch_pin_problem(wheel: Wheel, pin: TorchPin) -> str | None:
    """None when the wheel's torch requirement admits exactly the torch it was built for:
    the pin's minor ("2.14.1" -> 2.14.x), or with a stable-ABI floor ("2.10") every torch
    from the floor on. Else why not: pip swaps a user's torch to satisfy a wrong pin."""
    got = wheel.requires("torch")
    spec = SpecifierSet(",".join(str(r.specifier) for r in got if str(r.specifier)))
    v = Version(pin.version)
    if pin.floor is not None:
        f = Version(pin.floor)
        inside = [f"{f.major}.{f.minor}.0", f"{f.major}.{f.minor + 1}.0", f"{f.major + 1}.0.0"]
        outside = [f"{f.major}.{f.minor - 1}.99"] if f.minor else []
    else:
        inside = [f"{v.major}.{v.minor}.0", f"{v.major}.{v.minor}.99"]
        outside = [f"{v.major}.{v.minor + 1}.0", f"{v.major}.{max(v.minor - 1, 0)}.99"]
        outside = [x for x in outside if not x.startswith(f"{v.major}.{v.minor}.")]
    want = pin.requirement
    ok = bool(got) and all(spec.contains(x, prereleases=True) for x in inside) and not any(
        spec.contains(x, prereleases=True) for x in outside
    )
    if ok:
        return None
    shown = ", ".join(str(r) for r in got) or "none"
    return f"its torch requirement is {shown}, not {want}"


def read_build_record(path: str | Path) -> BuildRecord | None:
    """The build record of a wheel, or None when it has none (only the record is checked)."""
    return read_wheel(path, check_hashes=False).build_record
