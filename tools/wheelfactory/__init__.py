"""wheelfactory: build, check and publish prebuilt CUDA wheels of PyTorch extensions.

The pipeline has one module per stage, each taking and returning plain dataclasses:
recipe -> plan -> source -> build -> repair -> verify -> publish/index -> watch.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
