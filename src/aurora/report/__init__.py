"""The report of a store version: one self-contained HTML page (`report`)."""

from aurora.report.api import ReportResult, load_inputs, render_report, report

__all__ = ["ReportResult", "load_inputs", "render_report", "report"]
