"""What a validation found: one result per check, the report around them, and the gate that blocks on failure."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mnist_pipeline.errors import ValidationFailed


@dataclass(frozen=True)
class CheckResult:
    """One expectation on one split (split "dataset" for whole-dataset checks), with a message a person can act on."""

    split: str
    expectation: str
    column: str | None
    success: bool
    observed: Any
    expected: Any
    message: str


@dataclass(frozen=True)
class ValidationReport:
    """Every check's outcome, the duplicate-image report (informational) and the fingerprint that was verified."""

    success: bool
    checks: list[CheckResult]
    duplicates: dict[str, Any]
    fingerprint: str
    seconds: float

    def failures(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.success]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary for metrics.json and the HTML report."""
        failures = self.failures()
        return {
            **asdict(self),
            "seconds": round(self.seconds, 3),
            "checks_total": len(self.checks),
            "checks_failed": len(failures),
            "failures": [check.message for check in failures],
        }

    def summary_lines(self) -> list[str]:
        """One screen for the CLI: verdict, per-split tallies naming what failed, duplicates (the failure messages
        are `raise_if_failed`'s)."""
        failures = self.failures()
        verdict = "PASSED" if self.success else "FAILED"
        lines = [
            f"validation {verdict}: {len(self.checks) - len(failures)}/{len(self.checks)} checks passed "
            f"in {self.seconds:.1f} s (fingerprint {self.fingerprint[:16] or 'missing'})"
        ]
        for split in dict.fromkeys(check.split for check in self.checks):
            checks = [check for check in self.checks if check.split == split]
            failed = [_short_name(check) for check in checks if not check.success]
            rows = [
                check.observed["observed_value"]
                for check in checks
                if check.expectation.startswith("expect_table_row_count") and "observed_value" in check.observed
            ]
            size = f" ({rows[0]} rows)" if rows else ""
            failing = f"; failing: {', '.join(dict.fromkeys(failed))}" if failed else ""
            lines.append(f"  {split:<8} {len(checks) - len(failed)}/{len(checks)} passed{size}{failing}")
        lines += [f"  {line}" for line in describe_duplicates(self.duplicates)]
        return lines


def _short_name(check: CheckResult) -> str:
    """What a failed check was about, in a word: its column, else its subject."""
    if check.column:
        return check.column
    if check.expectation.startswith("expect_table_row_count"):
        return "row count"
    return check.expectation.removeprefix("expect_").split("_to_")[0]


def describe_duplicates(duplicates: dict[str, Any]) -> list[str]:
    """Duplicate counts as sentences; they are reported, never a reason to fail."""
    lines = [
        f"duplicates in {split}: {duplicates[f'{split}_duplicate_rows']} rows repeat an earlier image "
        f"({duplicates[f'{split}_repeated_images']} distinct images occur more than once)"
        for split in ("train", "test")
        if f"{split}_duplicate_rows" in duplicates
    ]
    if "test_rows_in_train" in duplicates:
        lines.append(
            f"duplicates across splits: {duplicates['test_rows_in_train']} test rows have an exact copy in train "
            f"({duplicates['train_test_shared_images']} distinct images)"
        )
    return lines


def raise_if_failed(report: ValidationReport) -> None:
    """Block the pipeline: raise ValidationFailed listing every failed check, one per line."""
    failures = report.failures()
    if not failures:
        return
    lines = [f"data validation failed ({len(failures)} of {len(report.checks)} checks):"]
    lines += [f"- {check.message}" for check in failures]
    raise ValidationFailed("\n".join(lines))
