"""The run report: one self-contained HTML page per run, the latest copy, and an index of all runs (no Prefect)."""

from mnist_pipeline.report.mistakes import Mistake, select_mistakes
from mnist_pipeline.report.publish import write_report
from mnist_pipeline.report.render import render_index, render_report

__all__ = ["Mistake", "render_index", "render_report", "select_mistakes", "write_report"]
