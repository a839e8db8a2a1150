"""The one-screen summary printed after a build."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wheelfactory.pipeline import BuildOutcome


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def as_dict(outcome: BuildOutcome) -> dict[str, Any]:
    return {
        "version": 1,
        "wheel": str(outcome.wheel),
        "size": outcome.size,
        "targets": [str(t) for t in outcome.targets],
        "policy": outcome.policy,
        "stages": outcome.stages,
        "compile_steps": outcome.compile_steps,
        "verified": outcome.report.ok if outcome.report else None,
        "verify_report": str(outcome.report_file) if outcome.report_file else None,
        "build_log": str(outcome.log_file),
    }


def render(outcome: BuildOutcome) -> str:
    lines = [
        "",
        f"wheel     {outcome.wheel.name}",
        f"where     {outcome.wheel.parent}",
        f"size      {_mb(outcome.size)}",
        f"targets   {', '.join(str(t) for t in outcome.targets)}",
        f"policy    {outcome.policy} (vendored: {', '.join(outcome.vendored) or 'nothing'})",
        "time      "
        + ", ".join(f"{k} {v:.0f} s" for k, v in outcome.stages.items())
        + f" (total {sum(outcome.stages.values()):.0f} s)",
    ]
    if outcome.report is not None:
        sass = sorted({sm for sms in outcome.report.sass.values() for sm in sms})
        lines.append(f"SASS      {', '.join(sass) or 'none'}")
        for r in outcome.report.imports:
            lines.append(
                f"import    {r.module}: {'ok' if r.ok else 'FAILED ' + r.error} ({r.seconds:.1f} s)"
            )
        lines.append(f"verified  {'yes' if outcome.report.ok else 'NO'} ({outcome.report_file})")
    else:
        lines.append("verified  no (--no-verify)")
    lines.append(f"build log {outcome.log_file}")
    return "\n".join(lines)
