"""Paths to the data files shipped inside the package (tables are data, not code).

Every file under resources/ is named here once, and only files that exist: modules use
these names instead of spelling paths (tests/unit/test_resources.py holds both ways).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

RESOURCES: Final = Path(__file__).parent / "resources"

# Tables
GPU_TARGETS: Final = RESOURCES / "gpu-targets.toml"  # arch names, SASS, oldest CUDA
GPUS: Final = RESOURCES / "gpus.toml"  # GPU product names -> compute capability
TORCH_RELEASES: Final = RESOURCES / "torch-releases.toml"  # torch x CUDA x Python builds
TORCH_STABLE_ABI: Final = RESOURCES / "torch-stable-abi.json"  # C-shim symbols by torch minor
REPAIR_EXCLUDES: Final = RESOURCES / "repair-excludes.toml"  # never vendored
CI_IMAGES: Final = RESOURCES / "ci-images.toml"  # CI build images and toolkits
PLATFORMS: Final = RESOURCES / "platforms.toml"  # one row per OS x machine
# Schemas
MANIFEST_SCHEMA: Final = RESOURCES / "manifest.schema.json"
BUILD_RECORD_SCHEMA: Final = RESOURCES / "build-record.schema.json"
PLAN_SCHEMA: Final = RESOURCES / "plan.schema.json"
# Files copied into builds and wheels
GUARD_TEMPLATE: Final = RESOURCES / "guard_template.py"  # the import guard
GPU_SHIM: Final = RESOURCES / "gpu_shim_sitecustomize.py"  # no GPU at build time
NVCC_FILTER: Final = RESOURCES / "nvcc_filter.py"  # one source, fewer targets
# The landing page's templates (landing.html, landing.css, landing.js)
LANDING: Final = RESOURCES / "landing"
