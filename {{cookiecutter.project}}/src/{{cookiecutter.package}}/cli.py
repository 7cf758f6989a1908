"""One command line: `python -m <package> <command> [options]`; each DVC stage is a command."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from .errors import run_main

# command -> module (relative to this package) whose `main(argv) -> int` does the work.
# Modules are imported only when their command runs: the stages need GE, MLflow or
# scikit-learn, and nobody should wait for all of them to print `--help`.
COMMANDS: dict[str, str] = {
    "validate": ".pipeline.validate",
    "train": ".pipeline.train",
    "evaluate": ".pipeline.evaluate",
    "gate": ".pipeline.gate",
    "promote": ".pipeline.promote",
    "deploy-decision": ".pipeline.deploy_decision",
    "contract": ".draft_contract",
    "data-update": ".data_version",
    "sample-data": ".sample_data",
    "data": ".data_sync",
    "push": ".data_push",
    "promotion-log": ".registry",
    "drift-check": ".monitoring.drift_check",
    "score": ".score",
    "score-spark": ".score_spark",
    "performance": ".monitoring.performance",
    "serve": ".serve.app",
    "bundle": ".serve.bundle",
    "loadgen": ".rollout.loadgen",
    "deploy": ".deploy.local",
    "k8s": ".deploy.kubernetes",
}

# Offline by default: no usage telemetry from the tools the pipeline runs.
QUIET_ENVIRONMENT = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "GX_ANALYTICS_ENABLED": "false",
}
# Set for one command, before its module (and so Arrow) is imported. `score` streams chunks
# through Arrow, whose default allocator (mimalloc) keeps the pages of freed chunks: the
# system allocator returns them, about 30 MB less at the peak for 1 M rows
# (bench/bench_score.py).
COMMAND_ENVIRONMENT: dict[str, dict[str, str]] = {
    "score": {"ARROW_DEFAULT_MEMORY_POOL": "system"},
}


def usage() -> str:
    """The list of commands."""
    package = __name__.split(".")[0]
    names = "\n".join(f"  {name}" for name in COMMANDS)
    return f"usage: python -m {package} <command> [options]\n\ncommands:\n{names}\n"


def main(argv: list[str] | None = None) -> int:
    """Run one command."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(usage(), end="")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"unknown command {command!r}\n\n{usage()}", end="", file=sys.stderr)
        return 2
    for key, value in {**QUIET_ENVIRONMENT, **COMMAND_ENVIRONMENT.get(command, {})}.items():
        os.environ.setdefault(key, value)
    target = importlib.util.resolve_name(COMMANDS[command], __package__)
    if importlib.util.find_spec(target) is None:
        # e.g. `k8s` in a project generated with deploy_target=local
        print(
            f"{command!r} is not part of this project ({target} was not generated)", file=sys.stderr
        )
        return 2
    # something the user can fix is one line and its documented exit code (errors.py);
    # any other exception is a bug and keeps its traceback
    return run_main(command, importlib.import_module(target).main, rest)
