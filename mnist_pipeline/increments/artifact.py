"""The `mnist-increment` artifact's markdown: the verdict, every blocking check, then the drift section."""

from __future__ import annotations

from mnist_pipeline.markdown import Markdown, escape_markdown, markdown_table
from mnist_pipeline.validation.results import CheckResult


def render_increment_markdown(
    batch_id: str, accepted: bool, checks: list[CheckResult], reasons: list[str], drift_markdown: str | None
) -> str:
    """Markdown for one gated batch; every text from the batch (names, messages) is escaped."""
    verdict = "accepted" if accepted else "refused"
    lines = [f"# Batch {escape_markdown(batch_id)}: {verdict}", ""]
    if reasons:
        lines += ["Refused because:", ""] + [f"- {escape_markdown(reason)}" for reason in reasons] + [""]
    lines += ["## Blocking checks", ""]
    lines += markdown_table(
        ["check", "result"], [(check.message, "pass" if check.success else Markdown("**fail**")) for check in checks]
    )
    if drift_markdown:
        lines += ["", drift_markdown]
    return "\n".join(lines) + "\n"
