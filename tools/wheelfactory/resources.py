"""Paths to the data files shipped inside the package (tables are data, not code)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

RESOURCES: Final = Path(__file__).parent / "resources"
GPU_TARGETS: Final = RESOURCES / "gpu-targets.toml"
TORCH_RELEASES: Final = RESOURCES / "torch-releases.toml"
DEFAULTS: Final = RESOURCES / "defaults.toml"
REPAIR_EXCLUDES: Final = RESOURCES / "repair-excludes.toml"
TEMPLATES: Final = RESOURCES / "templates"
CI_IMAGES: Final = RESOURCES / "ci-images.toml"
PLATFORMS: Final = RESOURCES / "platforms.toml"
MANIFEST_SCHEMA: Final = RESOURCES / "manifest.schema.json"
BUILD_RECORD_SCHEMA: Final = RESOURCES / "build-record.schema.json"
