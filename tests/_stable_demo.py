"""A stable-ABI recipe (floor 2.10, cp310-abi3, CUDA 13.0, Linux x86_64) for the coverage
and cover tests, unit and integration alike."""

STABLE_RECIPE = """\
[package]
name = "demo-ext"
version = "1.0.0"

[source]
git = "https://example.invalid/demo-ext.git"
commit = "0123456789abcdef0123456789abcdef01234567"

[matrix]
torch = ">=2.10"
stable-abi-floor = "2.10"
abi3 = "cp310"
cuda = "==13.0"
python = ">=3.10"
platforms = ["linux-x86_64"]

[[targets]]
cuda = ">=12.8"
archs = ["9.0a", "12.0a"]
"""
