"""Model tests on the holdout: quality, behaviour the contract requires, slices, coverage."""

import numpy as np
import pytest

from {{ cookiecutter.package }} import stats
from {{ cookiecutter.package }}.data import features_and_target
from {{ cookiecutter.package }}.evaluation import invariance_share
from {{ cookiecutter.package }}.model_io import load_model

from ..conftest import require_output


@pytest.fixture(scope="module")
def model():
    return load_model(require_output("models/model.skops"))


@pytest.fixture(scope="module")
def scored(model, holdout, contract):
    X, y = features_and_target(holdout, contract)
    return X, y, model.predict_proba(X)[:, 1]


def test_overall_auc(scored, config):
    """Holdout ROC AUC meets the gate's threshold (when params.yaml sets one)."""
    bound = config.gates.auc_roc
    if bound is None:
        pytest.skip("params.yaml: gates.auc_roc is null: no absolute AUC bound")
    _, y, scores = scored
    auc = stats.roc_auc(y, scores)
    assert auc >= bound, f"AUC {auc:.4f} below {bound}"


def test_invariances(model, scored, contract):
    """Every behavioural rule in the contract holds for its required share of rows."""
    X, _, _ = scored
    for rule in contract.invariances:
        share = invariance_share(model, X, rule)
        assert share >= rule.min_share, f"{rule.name}: only {share:.1%} of rows ({rule.direction})"


def test_slice_auc(scored, holdout, contract, config):
    """Each slice large enough to judge reaches the slice minimum."""
    if not contract.slices or config.gates.min_slice_auc is None:
        pytest.skip("contract.yaml declares no slices, or params.yaml sets no slice bound")
    _, y, scores = scored
    minimum = config.evaluate.min_slice_size
    judged = 0
    for name in contract.slices:
        mask = contract.slice_mask(holdout, name)
        if mask.sum() < minimum or len(np.unique(y[mask])) < 2:
            continue
        judged += 1
        auc = stats.roc_auc(y[mask], scores[mask])
        assert auc >= config.gates.min_slice_auc, f"slice {name}: AUC {auc:.4f}"
    assert judged >= 1, "no slice is large enough to judge: lower evaluate.min_slice_size"


def test_prediction_coverage(scored):
    """A valid probability for every holdout row: no NaN, all in [0, 1]."""
    _, _, scores = scored
    assert not np.isnan(scores).any()
    assert ((scores >= 0) & (scores <= 1)).all()


def test_predictions_are_deterministic(model, scored):
    """The same rows score the same twice: serving and tests see one model."""
    X, _, scores = scored
    np.testing.assert_array_equal(model.predict_proba(X)[:, 1], scores)
