"""The user's own estimator, end to end in a baked project, through its make targets.

LightGBM and XGBoost come in the way the README says (`make add`, then `make install` into
the bake's own .venv, then model.py and params.yaml); a transformer class of the user's own
rides along. Each then goes through `dvc repro` (gate and paired test), `make
deploy-staging`, `/predict`, `make score` and `make deploy-canary`, with real processes on
loopback. Refusals are shown too: a type model.py does not declare, a damaged model file, and
another version of the estimator's library.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest
import yaml

from .conftest import bake, run
from .test_delivery import alive, recorded_pids, working_in

pytestmark = pytest.mark.slow

PACKAGE = "churn_model"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", re.MULTILINE)

# What a user adds to model.py (README "Your own model"), for each estimator library.
OWN_ESTIMATORS = {
    "lightgbm": ("from lightgbm import LGBMClassifier", "LGBMClassifier"),
    "xgboost": ("from xgboost import XGBClassifier", "XGBClassifier"),
}
SETTINGS = {
    "lightgbm": {
        "n_estimators": 200,
        "learning_rate": 0.05,
        "num_leaves": 15,
        "n_jobs": 1,
        "verbose": -1,
    },
    "xgboost": {"n_estimators": 200, "learning_rate": 0.05, "max_depth": 4, "n_jobs": 1},
}
# A transformer of the user's own, between the features and the estimator: it clips the
# encoded matrix to the training range (fitted state, so it must persist and load).
CLIP = '''

class ClipToTrainingRange(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Clip each encoded feature to the range seen in training."""

    def fit(self, x: Any, y: Any = None) -> ClipToTrainingRange:
        self.low_, self.high_ = np.min(x, axis=0), np.max(x, axis=0)
        return self

    def transform(self, x: Any) -> Any:
        return np.clip(x, self.low_, self.high_)
'''
# A feature of raw columns inside the ColumnTransformer; `encode_row` keeps the one-row
# fast path (README "Your own model"), and without it serving must say the path is off.
ENCODE_ROW = """
    def encode_row(self, values: list[Any]) -> list[float]:
        return [float(np.log1p(float(v))) for v in values]
"""
LOG_SPEND = f'''

class LogSpend(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """log1p of the monthly spend, a feature of the raw column."""

    def fit(self, x: Any, y: Any = None) -> LogSpend:
        return self

    def transform(self, x: Any) -> Any:
        return np.log1p(np.asarray(x, dtype="float64"))
{ENCODE_ROW}'''


def make(project: Path, *targets: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A make target in the bake, with the bake's own .venv (make's default VENV)."""
    return run(["make", "--no-print-directory", *targets], project, check=check)


def venv_python(project: Path, code: str) -> str:
    return run([str(project / ".venv" / "bin" / "python"), "-c", code], project).stdout.strip()


def use_estimator(project: Path, kind: str, pipeline_steps: str, extra: str) -> None:
    """Edit model.py and params.yaml as the README says: import, ESTIMATORS, LIBRARIES, kind."""
    path = project / "src" / PACKAGE / "model.py"
    text = path.read_text()
    import_line, name = OWN_ESTIMATORS[kind]
    if import_line not in text:
        # at the top of the imports; `make format` puts them in order, as it would for a user
        extra_imports = [
            import_line,
            "import numpy as np",
            "from sklearn.base import BaseEstimator, TransformerMixin",
        ]
        anchor = "from collections.abc import"
        text = text.replace(
            anchor, "\n".join(i for i in extra_imports if i not in text) + "\n" + anchor, 1
        )
        text = text.replace(
            '    "logistic_regression": LogisticRegression,\n',
            f'    "logistic_regression": LogisticRegression,\n    "{kind}": {name},\n',
        )
        text = text.replace('    "skops": (),', f'    "{kind}": ("*",),\n    "skops": (),')
    # build_pipeline's body: from the end of its docstring to the end of its Pipeline(...)
    docstring = text.index('"""', text.index("def build_pipeline("))
    start = text.index('"""\n', docstring + 3) + len('"""\n')
    end = text.index("    )\n", text.index("    return Pipeline(\n", start)) + len("    )\n")
    text = text[:start] + pipeline_steps + text[end:]
    text = re.sub(r"\n\nclass (ClipToTrainingRange|LogSpend)\(.*", "\n", text, flags=re.S)
    path.write_text(text.rstrip("\n") + "\n" + extra)
    params_path = project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["model"] = {**params["model"], "kind": kind, kind: SETTINGS[kind]}
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))


def post(url: str, body: object) -> tuple[int, dict]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(
            "POST", "/predict", json.dumps(body), {"content-type": "application/json"}
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def staging_url(output: str) -> str:
    match = re.search(r"ready at (http://\S+)", output)
    assert match, output
    return match[1]


def one_row(project: Path) -> dict:
    """A holdout row as the load generator sends it (the package's own helper)."""
    code = (
        f"import json; from {PACKAGE}.contract import load_contract; "
        f"from {PACKAGE}.rollout.loadgen import holdout_rows; "
        "print(json.dumps(holdout_rows('data/holdout.parquet', load_contract('contract.yaml'), 1)[0]))"
    )
    return json.loads(venv_python(project, code))


def deliver(project: Path, seen: set[int], expect_fast: bool) -> None:
    """Staging, one /predict, batch scoring and a canary that reaches 100%."""
    staging = make(project, "deploy-staging")
    seen |= recorded_pids(project)
    slow_note = "single rows are scored through the whole pipeline"
    assert (slow_note in staging.stdout) != expect_fast, staging.stdout
    status, answer = post(staging_url(staging.stdout), one_row(project))
    assert status == 200, answer
    assert 0.0 <= answer["predictions"][0]["score"] <= 1.0, answer
    out = project / "predictions" / "scored.parquet"
    make(project, "score", "DATA=data/holdout.parquet", f"OUT={out}")
    scored = pd.read_parquet(out)
    assert len(scored) == len(pd.read_parquet(project / "data" / "holdout.parquet"))
    assert scored["score"].between(0, 1).all()
    canary = make(project, "deploy-canary")
    seen |= recorded_pids(project)
    assert "promoted:" in canary.stdout and "serves 100%" in canary.stdout, canary.stdout
    assert (slow_note in canary.stdout) != expect_fast, canary.stdout
    make(project, "undeploy")


@pytest.fixture(scope="module")
def project() -> Iterator[tuple[Path, set[int]]]:
    """A churn bake whose servers take free ports; every process it started stopped at the end.

    Baked outside pytest's temporary root: uid 10001 runs this bake's .venv in the image test,
    and every pytest that starts (the bake's own, another worker's) resets that root to 0700.
    """
    home = Path(tempfile.mkdtemp(prefix="own-model-"))
    home.chmod(0o755)
    project = bake(home)
    params_path = project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    # free ports; readiness judged on behaviour, not on how busy a shared test machine is
    params["serve"] |= {"router_port": 0, "staging_port": 0, "port": 0, "ready_timeout_s": 300}
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    seen: set[int] = set()
    yield project, seen
    if (project / ".deploy" / "state.json").is_file():
        seen |= recorded_pids(project)
        make(project, "undeploy", check=False)
    for pid in seen | working_in(project):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(home, ignore_errors=True)


def test_make_add_locks_the_estimators_with_hashes_and_make_install_installs_them(project):
    """One command adds a package to pyproject.toml's serve group and re-locks every file with
    hashes, keeping every other pin; `make install` then installs it."""
    root, _ = project
    before = {name: dict(PIN.findall((root / "requirements" / name).read_text()))
              for name in ("serve.txt", "train.txt", "dev.txt")}  # fmt: skip
    result = make(root, "add", "PKG=lightgbm xgboost-cpu")
    assert "now run `make install`" in result.stdout
    dependencies = __import__("tomllib").loads((root / "pyproject.toml").read_text())["project"]
    assert {"lightgbm", "xgboost-cpu"} <= set(dependencies["dependencies"])
    serve = (root / "requirements" / "serve.txt").read_text()
    for name in ("lightgbm", "xgboost-cpu"):
        entry = re.search(
            rf"^{name}==\S+(?: ;[^\\\n]*)? \\\n((?:\s+--hash=sha256:[0-9a-f]{{64}}.*\n)+)",
            serve,
            re.M,
        )
        assert entry, f"{name} is not locked with hashes in serve.txt:\n{serve}"
    for name, old in before.items():
        new = dict(PIN.findall((root / "requirements" / name).read_text()))
        assert {k: new.get(k) for k in old} == old, f"{name}: an existing pin moved"
    assert "lightgbm==" not in (root / "requirements" / "train.txt").read_text()  # layered
    refused = make(root, "add", "PKG=lightgbm", check=False)
    assert refused.returncode != 0 and "already in pyproject.toml" in refused.stderr
    make(root, "install")
    assert venv_python(root, "import lightgbm, xgboost; print('ok')") == "ok"


def test_lightgbm_with_a_transformer_of_ones_own(project):
    """LightGBM and a fitted transformer class written in the package: gate and paired test
    in `dvc repro`, its version recorded, staging, /predict, score and a canary, with the
    one-row fast path kept."""
    root, seen = project
    steps = (
        "    return Pipeline(\n        [\n"
        '            ("features", build_preprocessor(contract)),\n'
        '            ("clip", ClipToTrainingRange()),\n'
        '            ("model", build_estimator(kind, settings, seed)),\n'
        "        ]\n    )\n"
    )
    use_estimator(root, "lightgbm", steps, CLIP)
    make(root, "format")
    make(root, "lint-types", "lint-ruff", "lint-format")
    make(root, "repro")
    gate = json.loads((root / "metrics" / "gate.json").read_text())
    assert gate["passed"], gate
    promotion = json.loads((root / "metrics" / "promotion.json").read_text())
    assert promotion["decision"] == "promoted", promotion
    meta = json.loads((root / "models" / "train_meta.json").read_text())
    assert meta["model_kind"] == "lightgbm"
    installed = venv_python(root, "import importlib.metadata as m; print(m.version('lightgbm'))")
    assert meta["lightgbm_version"] == installed
    deliver(root, seen, expect_fast=True)


def test_another_lightgbm_version_is_refused_by_name(project):
    """The model was trained with this LightGBM; with another minor release installed,
    scoring refuses it and says which versions differ. Reinstalling the lock puts it back."""
    root, _ = project
    trained = json.loads((root / "models" / "train_meta.json").read_text())["lightgbm_version"]
    other = "4.5.0" if not trained.startswith("4.5.") else "4.6.0"
    run(["uv", "pip", "install", "--quiet", "--python", str(root / ".venv" / "bin" / "python"),
         f"lightgbm=={other}"], root)  # fmt: skip
    refused = make(root, "score", "DATA=data/holdout.parquet", check=False)
    assert refused.returncode != 0
    said = refused.stdout + refused.stderr
    assert f"lightgbm {other} is installed but the model was trained with {trained}" in said, said
    assert "Traceback" not in said
    make(root, "install")
    make(root, "score", "DATA=data/holdout.parquet")


def test_the_image_runs_the_lightgbm_model(project):
    """The bake's own container test, with the project's estimator now LightGBM: the server
    as uid 10001 with the Dockerfile's files and modes, and every system library the locked
    serving packages link (libgomp for LightGBM) in the slim base or the image's list."""
    root, _ = project
    # the image's user (uid 10001) runs this bake's .venv: its folder is 0700 from mkdtemp,
    # and under a strict umask so is what `make install` wrote; in the image `pip install` leaves
    # everything world-readable, so make this copy so too
    for folder in root.parents:
        if folder.stat().st_uid == os.getuid() and folder.stat().st_mode & 0o005 != 0o005:
            folder.chmod(folder.stat().st_mode | 0o755)
    run(["chmod", "-R", "a+rX", str(root / ".venv")], root)
    python = str(root / ".venv" / "bin" / "python")
    as_image_user = run(["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups", python,
                         "-c", "import lightgbm, sklearn"], root, check=False)  # fmt: skip
    assert as_image_user.returncode == 0, (
        "uid 10001 cannot run this bake's Python with LightGBM (is the base interpreter in a "
        f"folder only root may enter?):\n{as_image_user.stderr[-2000:]}"
    )
    result = run([str(root / ".venv" / "bin" / "python"), "-m", "pytest", "-q", "-p",
                  "no:cacheprovider", "tests/delivery/test_container.py"], root)  # fmt: skip
    assert " passed" in result.stdout


def test_a_type_model_py_does_not_declare_is_refused_with_its_name(project):
    """Without lightgbm in LIBRARIES, training refuses the model and names its types; a file
    holding an undeclared function, or damaged bytes, is a one-line error, not a traceback."""
    root, _ = project
    model_file = root / "models" / "model.skops"
    good = model_file.read_bytes()
    crafted = (
        "import numpy as np, skops.io as sio\n"
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import FunctionTransformer\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "m = make_pipeline(FunctionTransformer(np.exp), LogisticRegression()).fit([[0.0], [1.0]], [0, 1])\n"
        f"open({str(model_file)!r}, 'wb').write(sio.dumps(m))\n"
    )
    try:
        venv_python(root, crafted)
        evaluate = run(
            [str(root / ".venv" / "bin" / "python"), "-m", PACKAGE, "evaluate"], root, check=False
        )
        assert evaluate.returncode == 4, evaluate.stdout + evaluate.stderr
        assert "numpy.exp" in evaluate.stderr and "Traceback" not in evaluate.stderr
        model_file.write_bytes(good[: len(good) // 3])
        evaluate = run(
            [str(root / ".venv" / "bin" / "python"), "-m", PACKAGE, "evaluate"], root, check=False
        )
        assert evaluate.returncode == 4, evaluate.stdout + evaluate.stderr
        assert "not a skops model file" in evaluate.stderr and "Traceback" not in evaluate.stderr
    finally:
        model_file.write_bytes(good)
    model_py = root / "src" / PACKAGE / "model.py"
    declared = model_py.read_text()
    model_py.write_text(declared.replace('    "lightgbm": ("*",),\n', ""))
    try:
        refused = make(root, "train", check=False)
    finally:
        model_py.write_text(declared)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "lightgbm.basic.Booster" in said and "lightgbm.sklearn.LGBMClassifier" in said, said
    assert "Traceback" not in said
    # dvc removed the stage's outputs before the refused run; the cache has the last good ones
    run(["dvc", "checkout", "--quiet"], root)
    assert (root / "models" / "model.skops").is_file()


def test_xgboost_with_a_feature_of_raw_columns(project):
    """XGBoost from a fresh registry, with a feature of raw columns: the pipeline, staging,
    /predict, score and the canary work with the fast path kept by `encode_row`; without
    `encode_row`, the deploy says why single rows take the whole pipeline."""
    root, seen = project
    steps = (
        "    features = build_preprocessor(contract)\n"
        '    features.transformers.append(("log_spend", LogSpend(), ["monthly_spend"]))\n'
        "    return Pipeline(\n        [\n"
        '            ("features", features),\n'
        '            ("model", build_estimator(kind, settings, seed)),\n'
        "        ]\n    )\n"
    )
    use_estimator(root, "xgboost", steps, LOG_SPEND)
    make(root, "format")
    make(root, "lint-types", "lint-ruff", "lint-format")
    subprocess.run(["rm", "-rf", str(root / "registry"), str(root / ".deploy")], check=True)
    make(root, "repro")
    promotion = json.loads((root / "metrics" / "promotion.json").read_text())
    assert promotion["decision"] == "promoted", promotion
    meta = json.loads((root / "models" / "train_meta.json").read_text())
    assert meta["model_kind"] == "xgboost" and meta["xgboost_version"]
    deliver(root, seen, expect_fast=True)
    model_py = root / "src" / PACKAGE / "model.py"
    model_py.write_text(model_py.read_text().replace(ENCODE_ROW.strip("\n"), "").rstrip() + "\n")
    staging = make(root, "deploy-staging")
    seen |= recorded_pids(root)
    said = " ".join(staging.stdout.split())
    assert "single rows are scored through the whole pipeline" in said, staging.stdout
    assert "'log_spend'" in said and "LogSpend" in said and "encode_row" in said, staging.stdout
    make(root, "undeploy")
