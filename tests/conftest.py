"""Fixtures shared by several test modules."""

from __future__ import annotations

import numpy as np
import pytest
from course_helpers import SHIPPED_TRACE

from mdplab.autoscaler.model import AutoscalerModel, build_model
from mdplab.autoscaler.telemetry import read_csv


@pytest.fixture(scope="session")
def shipped_trace() -> dict[str, np.ndarray]:
    """The telemetry in ``data/``, read once for the whole run."""
    return read_csv(SHIPPED_TRACE)


@pytest.fixture(scope="session")
def shipped_model(shipped_trace) -> AutoscalerModel:
    """The capstone's model of that telemetry, with its default settings."""
    return build_model(shipped_trace)
