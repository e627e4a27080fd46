"""Shared pieces of the course tests: the repository layout and a grading course."""

from __future__ import annotations

from pathlib import Path

from mdplab.course.layout import Layout

REPO = Path(__file__).resolve().parents[1]
LAYOUT = Layout(REPO)
SHIPPED_TRACE = REPO / "data" / "autoscaler_telemetry.csv"
