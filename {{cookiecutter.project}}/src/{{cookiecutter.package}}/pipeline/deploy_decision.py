"""`deploy-decision`: whether this CI run deploys what promote decided (`make deploy-decision`).

The workflow's decision step runs it after promote. It reads metrics/promotion.json through
the model promote writes it with, and writes `decision`, `version` and `deploy` to
GITHUB_OUTPUT and one line to the job summary (each file only when its variable is set).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..paths import PROMOTION
from ..records import Promotion, read_record

# Events that retrain on a schedule or a drift alert, not on a push of new code.
RETRAIN_EVENTS = ("schedule", "repository_dispatch", "workflow_dispatch")


def should_deploy(
    promotion: Promotion, *, default_branch: bool, shared_registry: bool, event: str
) -> tuple[bool, str]:
    """Deploy or not, and why, from the promotion record and where the run happens."""
    if not default_branch:
        return False, "not the default branch: evaluated and compared, no alias moved"
    if promotion.decision != "promoted":
        return False, f"{promotion.decision}: {promotion.reason}"
    if promotion.champion is not None:
        return True, f"promoted over champion v{promotion.champion}"
    if shared_registry:
        return True, "the very first model of the shared registry"
    if event in RETRAIN_EVENTS:
        return False, "a retrain with no champion to compare with (no shared registry)"
    return True, "a push with no shared registry: deployed as a first model"


def _append(variable: str, text: str) -> None:
    # GitHub's step files are appended to by every step; a missing variable means a terminal.
    path = os.environ.get(variable)
    if path:
        with Path(path).open("a", encoding="utf-8") as handle:
            handle.write(text)


def main(argv: list[str] | None = None) -> int:
    """Decide whether to deploy the promoted model; print the verdict, write the step outputs."""
    parser = argparse.ArgumentParser(prog="deploy-decision", description=main.__doc__)
    parser.add_argument("--promotion", type=Path, default=PROMOTION)
    parser.add_argument("--event", default=os.environ.get("EVENT", "push"))
    args = parser.parse_args(argv)
    promotion = read_record(args.promotion, Promotion)
    deploy, why = should_deploy(
        promotion,
        default_branch=os.environ.get("ON_DEFAULT_BRANCH") == "true",
        shared_registry=bool(os.environ.get("MLFLOW_TRACKING_URI")),
        event=args.event,
    )
    verdict = "deploying" if deploy else "not deploying"
    line = f"Decision: {promotion.decision}; {verdict}: {why}"
    print(f"deploy-decision: {line}")
    _append("GITHUB_STEP_SUMMARY", f"\n**{line}**\n")
    _append(
        "GITHUB_OUTPUT",
        f"decision={promotion.decision}\nversion={promotion.challenger or ''}\n"
        f"deploy={str(deploy).lower()}\n",
    )
    return 0
