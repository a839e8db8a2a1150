"""Wheel anatomy: read a wheel file once and check it is one pip would install.

``read_wheel(path)`` is the one validator that publish, verify and the CI steps use. It
refuses, with one line each: a missing file or a non-zip; duplicate or escaping member
names; not exactly one ``.dist-info`` folder, or one whose name disagrees with the
filename; a missing ``WHEEL`` or ``METADATA``; a METADATA over METADATA_LIMIT (a small
wheel can expand to a huge one); METADATA whose name or version disagrees with the
filename; an invalid Requires-Python or Requires-Dist; a RECORD that misses a file, lists
one that is not there, or whose hash or size is wrong (every member is hashed, streamed);
and a build record that is not a strict, well-typed record.py ``BuildRecord``.

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
from collections.abc import Iterable, Sequence
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

METADATA_LIMIT = 1 << 20  # bytes: PyPI's METADATA of large projects is a few hundred KB
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


def _check_members(path: Path, zf: zipfile.ZipFile) -> list[str]:
    names = [i.filename for i in zf.infolist()]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise _refuse(path, f"it holds {name} twice (pip refuses duplicate members)")
        seen.add(name)
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            raise _refuse(path, f"member {name!r} escapes the install folder")
    return [n for n in names if not n.endswith("/")]


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


def check_record(zf: zipfile.ZipFile, dist_info: str, files: Sequence[str]) -> list[str]:
    """Problems with RECORD: a file missing from it, an entry for a missing file, a hash
    or size that does not match (every member is hashed, in chunks). [] when it is right."""
    record_name = f"{dist_info}/RECORD"
    if record_name not in files:
        return [f"{record_name} is missing"]
    unsigned = {record_name, f"{dist_info}/RECORD.jws", f"{dist_info}/RECORD.p7s"}
    recorded: dict[str, tuple[str, str]] = {}
    try:
        text = zf.read(record_name).decode("utf-8")
        rows = list(csv.reader(io.StringIO(text)))
    except (UnicodeDecodeError, csv.Error) as e:
        return [f"RECORD cannot be read ({e})"]
    for row in rows:
        if not row:
            continue
        if len(row) != 3:
            return [f"RECORD row {row!r} does not have 3 fields"]
        recorded[row[0]] = (row[1], row[2])
    problems = [f"{n} is not listed in RECORD" for n in files if n not in recorded and n not in unsigned]
    for name, (digest, size) in recorded.items():
        if name in unsigned:
            continue
        if name not in files:
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
        elif size and size != str(length):
            problems.append(f"the size of {name} does not match RECORD")
    return problems


def read_wheel(path: str | Path, *, check_hashes: bool = True) -> Wheel:
    """Open and check a wheel (see the module docstring); raise WheelError naming the problem."""
    path = Path(path)
    try:
        label = naming.parse_wheel(path.name)
    except ConfigError as e:
        raise WheelError(str(e)) from e
    if not path.is_file():
        raise WheelError(f"{path}: no such file; pass the path of a built wheel")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise _refuse(path, f"it is not a valid zip archive ({e})", "rebuild or re-download it") from e
    try:
        with zf:
            files = _check_members(path, zf)
            dist_info = _dist_info(path, files, label)
            for needed in ("WHEEL", "METADATA"):
                if f"{dist_info}/{needed}" not in files:
                    raise _refuse(path, f"{dist_info}/{needed} is missing")
            wheel_meta = parse_headers(_read_limited(zf, f"{dist_info}/WHEEL", METADATA_LIMIT, path))
            raw_meta = _read_limited(zf, f"{dist_info}/METADATA", METADATA_LIMIT, path)
            if check_hashes:
                problems = check_record(zf, dist_info, files)
                if problems:
                    raise _refuse(path, problems[0])
            record = None
            if f"{dist_info}/{RECORD_NAME}" in files:
                raw = _read_limited(zf, f"{dist_info}/{RECORD_NAME}", METADATA_LIMIT, path)
                try:
                    record = BuildRecord.loads(raw, where=f"{path.name}: {RECORD_NAME}")
                except RecordError as e:
                    raise WheelError(str(e)) from e
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as e:
        raise _refuse(path, f"the archive is corrupt ({e})", "rebuild or re-download it") from e
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
