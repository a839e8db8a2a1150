# Added by wheelfactory: checks, before this package's
# compiled extension loads, that the running torch, its CUDA and the GPU are the ones this
# wheel was built for, and otherwise raises ImportError with the command that installs
# the right wheel. Set WHEELFACTORY_SKIP_GUARD=1 to skip the check.
#
# Standard library only. It never initialises CUDA: the GPU is read from torch when torch
# has already initialised CUDA, else from NVML (libnvidia-ml, which creates no CUDA
# context and is fork-safe), else not checked.
from __future__ import annotations

import os

# wheelfactory fills in this dict when it adds the guard to a wheel (one line).
BUILD: dict = {}  # wheelfactory:build-info

_SKIP_ENV = "WHEELFACTORY_SKIP_GUARD"
_INDEX_ENV = "WHEELFACTORY_INDEX_URL"


def _minor(version):
    parts = version.split("+")[0].split(".")
    return (int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0))


def _target_runs_on(target, cap):
    """The rule of wheelfactory.arch.GpuTarget.runs_on for "9.0a", "12.0f", "8.9+PTX"."""
    ptx = target.endswith("+PTX")
    t = target[:-4] if ptx else target
    suffix = t[-1] if t[-1] in "af" else ""
    major, minor = t.rstrip("af").split(".")
    want = (int(major), int(minor))
    if suffix == "a":
        sass = cap == want
    else:
        sass = cap[0] == want[0] and cap[1] >= want[1]
    return sass or (ptx and cap >= want)


def _nvml_capabilities():
    """Compute capabilities of the visible GPUs through NVML, or None when unknown."""
    import ctypes

    names = ("nvml.dll",) if os.name == "nt" else ("libnvidia-ml.so.1",)
    lib = None
    for name in names:
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None or lib.nvmlInit_v2() != 0:
        return None
    try:
        count = ctypes.c_uint(0)
        if lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
            return None
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        indices = range(count.value)
        if visible is not None:
            try:  # plain indices; UUID or MIG forms: check every GPU
                indices = [int(i) for i in visible.split(",") if i.strip() != ""]
            except ValueError:
                pass
        caps = []
        for i in indices:
            handle = ctypes.c_void_p()
            major, minor = ctypes.c_int(0), ctypes.c_int(0)
            if i < 0 or i >= count.value:
                break  # CUDA stops at the first invalid index, too
            if lib.nvmlDeviceGetHandleByIndex_v2(i, ctypes.byref(handle)) != 0:
                return None
            if lib.nvmlDeviceGetCudaComputeCapability(
                handle, ctypes.byref(major), ctypes.byref(minor)
            ) != 0:
                return None
            caps.append((major.value, minor.value))
        return caps
    finally:
        lib.nvmlShutdown()


def gpu_capabilities(torch):
    """Capabilities of the GPUs, without initialising CUDA; None when unknown or no GPU."""
    cuda = getattr(torch, "cuda", None)
    if cuda is None:
        return None
    if cuda.is_initialized():  # free: torch already did the work
        return [tuple(cuda.get_device_capability(i)) for i in range(cuda.device_count())]
    try:
        return _nvml_capabilities()
    except Exception:  # noqa: BLE001 - an odd driver must not stop the import
        return None


def _index_root():
    """The index root URL, or "" when the build did not know it (nor does $WHEELFACTORY_INDEX_URL)."""
    return (os.environ.get(_INDEX_ENV) or BUILD["index_url"] or "").rstrip("/")


# Said instead of a URL when the index root is unknown: where to find it, never a made-up host.
_UNKNOWN_ROOT = "<index>"
_UNKNOWN_ROOT_NOTE = (
    f" ({_UNKNOWN_ROOT}: the root of the wheelfactory index this wheel came from;"
    f" set {_INDEX_ENV} to it to get the whole command)"
)


def _python():
    """How a pasted command runs this Python (the rule of wheelfactory.which.python_command):
    ComfyUI portable's python_embeded\\python.exe, else python."""
    import sys

    folder = os.path.dirname(sys.executable)
    if os.name == "nt" and os.path.basename(folder).lower() == "python_embeded":
        if any(n.startswith("python3") and n.endswith("._pth") for n in os.listdir(folder)):
            return "python_embeded\\python.exe"
    return "python"


def _view_path(cuda, torch_minor):
    """The strict view "cu130/torch2.14" (the rule of wheelfactory.naming.view_path;
    tests/unit/test_view_path.py compares the two)."""
    return "cu" + "".join(cuda.split(".")[:2]) + "/torch" + torch_minor


def _install(torch_minor, cuda, wanted=None):
    """The pip command for this project at ``wanted`` (a version or a range) from the view.
    Double quotes: cmd.exe passes single quotes on to pip."""
    wanted = wanted or BUILD["public_version"]
    spec = wanted if wanted[:1] in "<>=!~" else f"=={wanted}"
    root = _index_root()
    return (
        f'{_python()} -m pip install --force-reinstall "{BUILD["project"]}{spec}"'
        f" --extra-index-url {root or _UNKNOWN_ROOT}/{_view_path(cuda, torch_minor)}/simple/"
        + ("" if root else _UNKNOWN_ROOT_NOTE)
    )


def _built_for():
    torch = (
        f"torch>={BUILD['torch_floor']} (stable ABI)"
        if BUILD["torch"] == "abi"
        else f"torch {BUILD['torch']}"
    )
    return f"{BUILD['project']} {BUILD['version']} was built for {torch} with CUDA {BUILD['cuda']}"


def problem(torch):
    """None when ``torch`` (the module) fits this wheel, else the one-line message."""
    version = str(torch.__version__)
    cuda = getattr(torch.version, "cuda", None)
    skip = f" (to try anyway, set {_SKIP_ENV}=1)"
    minor = "{}.{}".format(*_minor(version))
    if cuda is None:
        return (
            f"{_built_for()}, but torch {version} in this Python has no CUDA: install a CUDA"
            f' build of torch: {_python()} -m pip install "torch=={minor}.*" --index-url'
            f" https://download.pytorch.org/whl/cu{BUILD['cuda'].replace('.', '')}"
        )
    if BUILD["torch"] == "abi":
        torch_ok = _minor(version) >= _minor(BUILD["torch_floor"])
    else:
        torch_ok = _minor(version) == _minor(BUILD["torch"])
    if not torch_ok or cuda.split(".")[0] != BUILD["cuda"].split(".")[0]:
        return (
            f"{_built_for()}, but this Python has torch {version} with CUDA {cuda}"
            f" (it would fail with 'undefined symbol' or 'DLL load failed'): install the"
            f" matching wheel: {_install(minor, cuda)}{skip}"
        )
    # "gpu" skips only this check: the factory's own import test on a build machine whose GPU
    # is not one of the targets (the wheel is fine; that GPU just cannot run it).
    caps = None if os.environ.get(_SKIP_ENV) == "gpu" else gpu_capabilities(torch)
    for bad in BUILD.get("known_bad") or ():
        want = tuple(int(x) for x in bad["arch"].split("."))
        if caps and any(tuple(c) == want for c in caps):
            return (
                f"{_built_for()}, but it computes wrong results on sm_{want[0]}{want[1]} GPUs like"
                f" this one ({bad['reason']}): install {BUILD['project']}"
                f" {bad['use_instead']} instead: {_install(minor, cuda, bad['use_instead'])}{skip}"
            )
    targets = BUILD["targets"]
    if caps and targets and not any(_target_runs_on(t, c) for t in targets for c in caps):
        sms = ", ".join(f"sm_{c[0]}{c[1]}" for c in caps)
        return (
            f"{_built_for()} and GPU targets {', '.join(targets)}, but this GPU is {sms}"
            f" (it would fail with 'no kernel image is available'): find a wheel for it with"
            f" python which.py {BUILD['project']} (from {_index_root() or _UNKNOWN_ROOT}/which.py"
            f"{'' if _index_root() else _UNKNOWN_ROOT_NOTE}){skip}"
        )
    return None


def check():
    if os.environ.get(_SKIP_ENV, "") not in ("", "0", "gpu"):
        return
    try:
        import torch
    except ImportError as e:
        cu = "cu" + BUILD["cuda"].replace(".", "")
        torch_spec = "torch" if BUILD["torch"] == "abi" else f'"torch=={BUILD["torch"]}.*"'
        msg = (
            f"{_built_for()}, but torch does not import in this Python ({e}): install it:"
            f" {_python()} -m pip install {torch_spec} --index-url https://download.pytorch.org/whl/{cu}"
        )
        raise ImportError(msg) from e
    msg = problem(torch)
    if msg:
        raise ImportError(msg)


check()
