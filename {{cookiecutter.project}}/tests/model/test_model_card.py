"""The model card written by evaluate is complete and says what metrics.json says."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT, require_output


def test_card_has_every_section_and_no_template_text():
    """Intended use, data, metrics, slices, fairness, behaviour, importance, limitations."""
    card = require_output("reports/model_card.md").read_text(encoding="utf-8")
    for title in (
        "Intended use", "Training data", "Model", "Evaluation", "Slices", "Fairness",
        "Behaviour", "Permutation importance", "Limitations", "Environment",
    ):  # fmt: skip
        assert f"# {title}" in card
    assert "More Information Needed" not in card


def test_card_reports_the_measured_auc_and_every_feature():
    """The numbers in the card are the ones evaluate measured, not copies that can drift."""
    card = require_output("reports/model_card.md").read_text(encoding="utf-8")
    metrics = json.loads(require_output("metrics/metrics.json").read_text(encoding="utf-8"))
    assert f"{metrics['metrics']['roc_auc']['value']:.4f}" in card
    for entry in metrics["importance"]:
        assert entry["feature"] in card


def test_the_promotion_record_links_the_registered_card(tmp_path):
    """promote registers the card with the version; promotion.json says where it is."""
    from {{ cookiecutter.package }}.registry import Registry

    promotion = ROOT / "metrics" / "promotion.json"
    if not promotion.is_file():  # CI runs these tests before it registers anything
        pytest.skip("promote has not run yet: no promotion record to follow")
    record = json.loads(promotion.read_text(encoding="utf-8"))
    link = record["model_card"]
    assert link["artifact"] == "model_card.md"
    card = Registry().artifact_path(link["version"], link["artifact"])
    assert card.read_text(encoding="utf-8") == require_output("reports/model_card.md").read_text(
        encoding="utf-8"
    )
