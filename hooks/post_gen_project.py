"""Finish the new repository: keep only the selected variants, then git, DVC and sample data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

# the sample data set (the task chooses it for multiclass and regression), or "own"
DATASET: str = {{ cookiecutter.__sample | tojson }}
PACKAGE: str = {{ cookiecutter.package | tojson }}
DATA_FILE: str = {{ cookiecutter.__data_file | tojson }}
HAS_K8S: bool = {{ cookiecutter.__has_k8s | tojson }} == "True"
HAS_SAMPLE_DATA: bool = {{ cookiecutter.__has_sample_data | tojson }} == "True"
# Where the template was checked out; `cruft update` renders without it, hence the default.
TEMPLATE_DIR: str = {{ cookiecutter._repo_dir | default("") | tojson }}

# Files that exist for one variant only: (keep when, path). One table, no scattered ifs.
VARIANT_PATHS: list[tuple[bool, str]] = [
    (HAS_K8S, "deploy/k8s"),
    (HAS_K8S, ".github/workflows/k8s-e2e.yml"),
    (HAS_K8S, f"src/{PACKAGE}/deploy/kubernetes.py"),
    (HAS_K8S, f"src/{PACKAGE}/rollout/argo.py"),
    (HAS_K8S, f"src/{PACKAGE}/rollout/k8s_profile.py"),
    (HAS_K8S, "tests/code/test_monitoring_k8s.py"),
]
CONTRACTS = Path("_variants")


def remove_unselected(root: Path) -> None:
    """Delete the files of variants that were not chosen."""
    for keep, relative in VARIANT_PATHS:
        path = root / relative
        if keep or not path.exists():
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def place_contract(root: Path) -> None:
    """The chosen data set's contract becomes contract.yaml; `own` drafts one later."""
    chosen = root / CONTRACTS / f"contract.{DATASET}.yaml"
    if chosen.exists():
        chosen.replace(root / "contract.yaml")
    shutil.rmtree(root / CONTRACTS, ignore_errors=True)


def record_template_commit(root: Path) -> None:
    """Write the template's commit into .cruft.json so `cruft update` knows where it started."""
    state_file = root / ".cruft.json"
    if not TEMPLATE_DIR or not state_file.exists():
        return
    state = json.loads(state_file.read_text(encoding="utf-8"))
    if state.get("commit"):
        return
    head = subprocess.run(
        ["git", "-C", TEMPLATE_DIR, "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    if head.returncode == 0:
        state["commit"] = head.stdout.strip()
        state_file.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")


def run(*command: str) -> bool:
    """Run a set-up command; report, but do not fail the bake, if a tool is missing."""
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        return False
    except subprocess.CalledProcessError as error:
        print(f"warning: {' '.join(command)} failed: {error.stderr.strip()}", file=sys.stderr)
        return False
    return True


def main() -> int:
    """Post-generation steps; each is safe to repeat (cruft update runs hooks again)."""
    root = Path.cwd()
    remove_unselected(root)
    place_contract(root)
    record_template_commit(root)
    if not (root / ".git").exists():
        run("git", "init", "--quiet")
    if HAS_SAMPLE_DATA and not (root / DATA_FILE).exists():
        script = root / "src" / PACKAGE / "sample_data.py"
        subprocess.run([sys.executable, str(script), "--out", DATA_FILE], check=True, capture_output=True)
    has_dvc = shutil.which("dvc") is not None
    if has_dvc:
        if not (root / ".dvc").exists():
            run("dvc", "init", "--quiet")
        run("dvc", "config", "core.analytics", "false")
        if HAS_SAMPLE_DATA and not (root / f"{DATA_FILE}.dvc").exists():
            run("dvc", "add", "--quiet", DATA_FILE)
    steps = "make install" + ("" if has_dvc else " (also sets up DVC)")
    follow = "make contract DATA=path/to/your.csv && " if not HAS_SAMPLE_DATA else ""
    print(f"\nCreated {root.name}. Next: cd {root.name} && {steps} && {follow}make repro")
    return 0


if __name__ == "__main__":
    sys.exit(main())
