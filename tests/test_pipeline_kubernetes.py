"""The matrix's Kubernetes rows, as test_pipeline.py runs its local ones (a file of their own,
so xdist runs the two halves on two workers)."""

from __future__ import annotations

import pytest

from .conftest import variant_id
from .test_pipeline import check_baked_project, rows

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("answers", rows("kubernetes"), ids=variant_id)
def test_baked_project_pipeline(tmp_path, tmp_path_factory, answers):
    """Every Kubernetes row of the matrix lints clean, runs green and passes its own tests."""
    check_baked_project(tmp_path, tmp_path_factory, answers)
