"""Every failure a user can meet, one class each, each message ending in its fix.

Only the CLI catches these (cli/__init__.py): it prints ``ERROR: <message>`` and exits
with ``return_code``. Library code raises, never exits.
"""

from __future__ import annotations


class WheelfactoryError(Exception):
    """Base class. ``str(err)`` is one line that says what is wrong and what to do."""

    return_code = 1

    def __init__(self, message: str, *, tip: str | None = None) -> None:
        super().__init__(message)
        self.tip = tip


class RecipeError(WheelfactoryError):
    """A recipe file is malformed or asks for something impossible."""

    return_code = 2


class ConfigError(WheelfactoryError):
    """Command-line options or data tables do not fit together."""

    return_code = 2


class ToolMissingError(WheelfactoryError):
    """An external program (nvcc, patchelf, cuobjdump, ...) is not installed."""

    return_code = 3


class CommandFailedError(WheelfactoryError):
    """A subprocess exited non-zero; its captured output was already replayed."""

    return_code = 4


class SourceError(WheelfactoryError):
    """A source could not be fetched or did not match its pinned hash or commit."""

    return_code = 5


class BuildError(WheelfactoryError):
    """The build ran but did not give the wheel it should have."""

    return_code = 6


class RepairError(WheelfactoryError):
    """auditwheel/delvewheel refused the wheel or would vendor what must not be."""

    return_code = 7


class VerifyError(WheelfactoryError):
    """A built wheel failed one of its checks (tags, SASS targets, import)."""

    return_code = 8


class PublishError(WheelfactoryError):
    """A wheel cannot be published: clashing name, bad hashes, corrupt archive."""

    return_code = 9


class NetworkError(WheelfactoryError):
    """A remote service did not answer after bounded retries."""

    return_code = 10


class CoverageError(WheelfactoryError):
    """Required wheels are missing from an index."""

    return_code = 11


class GpuCheckError(WheelfactoryError):
    """A wheel's kernels gave wrong results on a GPU, or its check could not run."""

    return_code = 12


class NotReproducedError(WheelfactoryError):
    """A rebuild from a wheel's build record gave other bytes (verify --rebuild)."""

    return_code = 13
