"""wheelfactory's no-GPU shim, installed as ``sitecustomize`` on PYTHONPATH during a build.

Some setup.py files ask torch.cuda for the local GPU (``get_device_capability()``) to pick
their targets. On a build machine without a GPU this answers as a GPU of compute capability
``WHEELFACTORY_GPU_SHIM_CAPABILITY`` ("12.0") would. torch is not imported here: the patch
is applied when (and if) the build imports ``torch.cuda``.
"""

import importlib.abc
import importlib.machinery
import os
import sys

_CAP = os.environ.get("WHEELFACTORY_GPU_SHIM_CAPABILITY", "")


def _patch(cuda):
    major, minor = (int(p) for p in _CAP.split(".")[:2])
    name = os.environ.get("WHEELFACTORY_GPU_SHIM_NAME", "wheelfactory no-GPU shim (sm_%d%d)" % (major, minor))

    class _Props:
        def __init__(self):
            self.major, self.minor, self.name = major, minor, name
            self.total_memory = 80 * 1024**3
            self.multi_processor_count = 132

    cuda.is_available = lambda: True
    cuda.device_count = lambda: 1
    cuda.current_device = lambda: 0
    cuda.get_device_capability = lambda device=None: (major, minor)
    cuda.get_device_name = lambda device=None: name
    cuda.get_device_properties = lambda device=None: _Props()
    cuda.get_arch_list = lambda: ["sm_%d%d" % (major, minor)]


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != "torch.cuda":
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            spec = getattr(finder, "find_spec", lambda *a: None)(fullname, path, target)
            if spec is not None and spec.loader is not None:
                loader = spec.loader
                original = loader.exec_module

                def exec_module(module, _original=original):
                    _original(module)
                    _patch(module)

                loader.exec_module = exec_module
                return spec
        return None


if _CAP:
    sys.meta_path.insert(0, _Finder())
