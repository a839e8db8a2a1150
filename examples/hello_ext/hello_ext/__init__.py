"""wheelfactory's example extension: ``hello_ext.scale(x, factor)`` on a CUDA tensor."""

import torch  # noqa: F401  (loads libtorch before the extension module)

from hello_ext._C import scale

__all__ = ["scale"]
