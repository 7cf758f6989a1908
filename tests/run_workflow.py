#!/usr/bin/env python3
"""Run a baked project's GitHub Actions workflow here, job by job, the way GitHub would.

The template's own harness for the workflows it generates (tests/workflow_runs.py drives it
against moto S3 and a real `mlflow server`); it does not ship in a bake, whose README points
users at `act`. From a baked project:

    python path/to/template/tests/run_workflow.py --event push --ref refs/heads/main \\
        --secret MLFLOW_TRACKING_URI --secret AWS_ACCESS_KEY_ID --secret AWS_SECRET_ACCESS_KEY

Every job runs in a fresh `git clone` of what is committed (uncommitted changes are not
seen, as on GitHub), in its own directory with its own HOME, after the jobs it `needs`.
`run:` steps go to bash with the workflow's, job's and step's `env`; `${{ }}` expressions
are evaluated by a small evaluator that stops on anything it does not understand; `if:`,
job and step outputs, GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH and GITHUB_STEP_SUMMARY are
honoured. actions/checkout, setup-python, cache, upload-artifact and download-artifact are
emulated; any other action whose `if:` is true fails the job. GitHub's REST API is played by a
loopback server at GITHUB_API_URL that answers `POST /repos/OWNER/NAME/dispatches` (a
`repository_dispatch`, e.g. drift-check's retrain request) as GitHub does, checking the
job's token, and records each request in run.json (`dispatches`); any other call gets 404. Secrets are read from this
process's environment (`--secret NAME`); values never appear on a command line or in logs.

Not emulated (the run stops if the workflow uses them): matrices, containers, services,
reusable workflows. Jobs run one at a time in dependency order, so concurrency groups hold
trivially; environments run without their required reviewers.
Writes WORKDIR/run.json (results, outputs, step times), WORKDIR/artifacts/, WORKDIR/logs/.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import glob
import hashlib
import http.server
import json
import math
import os
import re
import secrets as token_source
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Machine settings a self-hosted runner would carry (package index, proxies, certificates).
PASS_THROUGH = re.compile(
    r"^(PIP_\w+|UV_INDEX\w*|UV_EXTRA_INDEX_URL|UV_FIND_LINKS|SSL_CERT_\w+|REQUESTS_CA_BUNDLE|(?i:https?_proxy|no_proxy))$"
)
SHELLS = {
    None: ["bash", "-e", "{0}"],
    "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"],
    "sh": ["sh", "-e", "{0}"],
}
UNSUPPORTED_JOB_KEYS = {"strategy", "container", "services", "uses", "with", "secrets"}
STATUS_FUNCTIONS = {"success", "always", "failure", "cancelled"}


class WorkflowError(RuntimeError):
    """The workflow uses something this runner cannot run faithfully; the message says what."""


class ExpressionError(WorkflowError):
    """An expression this evaluator does not understand."""


# --------------------------------------------------------------------------- expressions

TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<number>-?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?))
    | (?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\],.*])
    | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
    )""",
    re.VERBOSE,
)
Node = tuple[Any, ...]


def tokenize(text: str) -> list[tuple[str, str]]:
    """Split an expression into (kind, text) tokens; anything unknown is an error."""
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"cannot read {text[position:]!r} in expression {text!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class Parser:
    """Recursive descent over GitHub's expression grammar (lowest precedence first)."""

    def __init__(self, text: str) -> None:
        self.text, self.tokens, self.i = text, tokenize(text), 0

    def parse(self) -> Node:
        node = self.or_()
        if self.i != len(self.tokens):
            raise ExpressionError(f"unexpected {self.tokens[self.i][1]!r} in {self.text!r}")
        return node

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise ExpressionError(f"expression ends too early: {self.text!r}")
        token = self.tokens[self.i]
        if expected is not None and token[1] != expected:
            raise ExpressionError(f"expected {expected!r}, got {token[1]!r} in {self.text!r}")
        self.i += 1
        return token

    def binary(self, operators: tuple[str, ...], operand: Callable[[], Node]) -> Node:
        node = operand()
        while self.peek() in operators:
            op = self.take()[1]
            node = ("binary", op, node, operand())
        return node

    def or_(self) -> Node:
        return self.binary(("||",), self.and_)

    def and_(self) -> Node:
        return self.binary(("&&",), self.equality)

    def equality(self) -> Node:
        return self.binary(("==", "!="), self.comparison)

    def comparison(self) -> Node:
        return self.binary(("<", "<=", ">", ">="), self.unary)

    def unary(self) -> Node:
        if self.peek() == "!":
            self.take()
            return ("not", self.unary())
        return self.postfix()

    def postfix(self) -> Node:
        node = self.primary()
        while self.peek() in (".", "["):
            if self.take()[1] == ".":
                kind, name = self.take()
                if kind != "name":
                    raise ExpressionError(f"unsupported property {name!r} in {self.text!r}")
                node = ("property", node, name)
            else:
                index = self.or_()
                self.take("]")
                node = ("index", node, index)
        return node

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "string":
            return ("literal", text[1:-1].replace("''", "'"))
        if kind == "number":
            value = float(int(text, 16)) if "x" in text.lower() else float(text)
            return ("literal", value)
        if text == "(":
            node = self.or_()
            self.take(")")
            return node
        if kind != "name":
            raise ExpressionError(f"unexpected {text!r} in {self.text!r}")
        if text in ("true", "false"):
            return ("literal", text == "true")
        if text == "null":
            return ("literal", None)
        if self.peek() == "(":
            self.take()
            args: list[Node] = []
            while self.peek() != ")":
                args.append(self.or_())
                if self.peek() != ")":
                    self.take(",")
            self.take(")")
            return ("call", text.lower(), args)
        return ("context", text.lower())


def uses_status_function(node: Node) -> bool:
    """Whether `success()`, `always()`, `failure()` or `cancelled()` appears anywhere."""
    if node[0] == "call" and node[1] in STATUS_FUNCTIONS:
        return True
    return any(isinstance(part, tuple) and uses_status_function(part) for part in node[1:]) or any(
        isinstance(part, list) and any(uses_status_function(p) for p in part) for part in node[1:]
    )


def truthy(value: Any) -> bool:
    """GitHub's truthiness: false, 0, -0, '', null and NaN are false."""
    if isinstance(value, float) and math.isnan(value):
        return False
    return value not in (None, False, 0, "")


def to_number(value: Any) -> float:
    """GitHub's coercion for comparing values of different types."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        if value.strip() == "":
            return 0.0
        try:
            return float(int(value, 16)) if value.strip().lower().startswith("0x") else float(value)
        except ValueError:
            return math.nan
    return math.nan


def loose_equal(a: Any, b: Any) -> bool:
    """`==`: same type compares directly (strings ignore case), otherwise as numbers."""
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    if type(a) is type(b) and not isinstance(a, dict | list):
        return a == b and not (isinstance(a, float) and math.isnan(a))
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return a is b
    x, y = to_number(a), to_number(b)
    return not (math.isnan(x) or math.isnan(y)) and x == y


def compare(op: str, a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        x: Any = a.casefold()
        y: Any = b.casefold()
    else:
        x, y = to_number(a), to_number(b)
        if math.isnan(x) or math.isnan(y):
            return False
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


def to_text(value: Any) -> str:
    """How a value is written into a string (interpolation, format())."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    raise ExpressionError(f"cannot write an object or array into a string: {value!r}")


def github_format(template: str, *args: Any) -> str:
    """format('{0} and {{literal}}', x)."""
    out, i = [], 0
    while i < len(template):
        char = template[i]
        if template.startswith("{{", i) or template.startswith("}}", i):
            out.append(char)
            i += 2
        elif char == "{":
            end = template.index("}", i)
            index = int(template[i + 1 : end])
            if index >= len(args):
                raise ExpressionError(f"format({template!r}) has no argument {index}")
            out.append(to_text(args[index]))
            i = end + 1
        elif char == "}":
            raise ExpressionError(f"format({template!r}): unmatched '}}'")
        else:
            out.append(char)
            i += 1
    return "".join(out)


def get_property(obj: Any, name: Any) -> Any:
    """obj.name / obj['name']: keys ignore case; anything missing is null."""
    if isinstance(obj, dict):
        if name in obj:
            return obj[name]
        folded = str(name).casefold()
        for key, value in obj.items():
            if str(key).casefold() == folded:
                return value
        return None
    if isinstance(obj, list) and isinstance(name, float) and name.is_integer():
        index = int(name)
        return obj[index] if 0 <= index < len(obj) else None
    return None


@dataclass
class Scope:
    """What an expression can see: named contexts and the job's or step's status."""

    contexts: dict[str, Any]
    status: Callable[[str], bool] = lambda name: name != "failure"
    workspace: Path | None = None  # where hashFiles() looks; None where GitHub has no files

    def evaluate(self, node: Node) -> Any:
        kind = node[0]
        if kind == "literal":
            return node[1]
        if kind == "context":
            if node[1] not in self.contexts:
                raise ExpressionError(f"context {node[1]!r} is not available here")
            return self.contexts[node[1]]
        if kind == "property":
            return get_property(self.evaluate(node[1]), node[2])
        if kind == "index":
            return get_property(self.evaluate(node[1]), self.evaluate(node[2]))
        if kind == "not":
            return not truthy(self.evaluate(node[1]))
        if kind == "binary":
            op, left = node[1], self.evaluate(node[2])
            if op == "&&":
                return self.evaluate(node[3]) if truthy(left) else left
            if op == "||":
                return left if truthy(left) else self.evaluate(node[3])
            right = self.evaluate(node[3])
            if op == "==":
                return loose_equal(left, right)
            if op == "!=":
                return not loose_equal(left, right)
            return compare(op, left, right)
        if kind == "call":
            return self.call(node[1], [self.evaluate(arg) for arg in node[2]])
        raise ExpressionError(f"unknown node {kind}")

    def call(self, name: str, args: list[Any]) -> Any:
        if name in STATUS_FUNCTIONS:
            if args:
                raise ExpressionError(f"{name}() takes no arguments")
            return self.status(name)
        if name == "format" and args:
            return github_format(to_text(args[0]), *args[1:])
        if name in ("startswith", "endswith") and len(args) == 2:
            text, part = to_text(args[0]).casefold(), to_text(args[1]).casefold()
            return text.startswith(part) if name == "startswith" else text.endswith(part)
        if name == "contains" and len(args) == 2:
            if isinstance(args[0], list):
                return any(loose_equal(item, args[1]) for item in args[0])
            return to_text(args[1]).casefold() in to_text(args[0]).casefold()
        if name == "hashfiles" and args and self.workspace is not None:
            return hash_files(self.workspace, [to_text(arg) for arg in args])
        if name == "tojson" and len(args) == 1:
            return json.dumps(args[0], indent=2)
        if name == "fromjson" and len(args) == 1:
            value = json.loads(to_text(args[0]))
            return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
        raise ExpressionError(f"function {name}() with {len(args)} argument(s) is not supported")


def evaluate(text: str, scope: Scope) -> Any:
    """Evaluate one expression (the text inside `${{ }}`)."""
    return scope.evaluate(Parser(text).parse())


def split_template(text: str) -> list[tuple[bool, str]]:
    """'a ${{ x }} b' -> [(False, 'a '), (True, ' x '), (False, ' b')]; quotes may hold '}}'."""
    parts: list[tuple[bool, str]] = []
    position = 0
    while (start := text.find("${{", position)) >= 0:
        parts.append((False, text[position:start]))
        i, quoted = start + 3, False
        while i < len(text) and (quoted or not text.startswith("}}", i)):
            quoted ^= text[i] == "'"
            i += 1
        if i >= len(text):
            raise ExpressionError(f"unterminated ${{{{ in {text!r}")
        parts.append((True, text[start + 3 : i]))
        position = i + 2
    parts.append((False, text[position:]))
    return [part for part in parts if part[0] or part[1]]


def interpolate(value: Any, scope: Scope) -> Any:
    """A YAML value with `${{ }}` in it: a lone expression keeps its type, else a string."""
    if isinstance(value, dict):
        return {key: interpolate(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, scope) for item in value]
    if not isinstance(value, str) or "${{" not in value:
        return value
    parts = split_template(value)
    if len(parts) == 1 and parts[0][0]:
        return evaluate(parts[0][1], scope)
    return "".join(to_text(evaluate(text, scope)) if is_expr else text for is_expr, text in parts)


def condition(value: Any, scope: Scope) -> bool:
    """An `if:`: bare or wrapped in `${{ }}`; without a status function it implies success()."""
    if value is None:
        return scope.status("success")
    if isinstance(value, bool):
        return value and scope.status("success")
    text = str(value).strip()
    parts = split_template(text)
    if "${{" in text:
        if len(parts) != 1 or not parts[0][0]:
            raise ExpressionError(f"if: {text!r} mixes text and ${{{{ }}}}: always true on GitHub")
        text = parts[0][1]
    node = Parser(text).parse()
    if not uses_status_function(node):
        node = ("binary", "&&", ("call", "success", []), node)
    return truthy(scope.evaluate(node))


# --------------------------------------------------------------------------- command files


def read_command_file(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT / GITHUB_ENV: `name=value` lines and `name<<DELIM` blocks."""
    values: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block: list[str] = []
            while i < len(lines) and lines[i] != delimiter:
                block.append(lines[i])
                i += 1
            if i >= len(lines):
                raise WorkflowError(f"{path.name}: no closing {delimiter!r} for {name!r}")
            i += 1
            values[name] = "\n".join(block)
        elif "=" in line:
            name, text = line.split("=", 1)
            values[name] = text
        else:
            raise WorkflowError(f"{path.name}: cannot read line {line!r}")
    return values


# --------------------------------------------------------------------------- run model


@dataclass
class Settings:
    """One workflow run: where the repository is, which event, which secrets."""

    repo: Path
    workflow: str
    event: str
    ref: str
    workdir: Path
    python: str
    cache_dir: Path
    secrets: dict[str, str]
    variables: dict[str, str]
    runner_env: dict[str, str] = field(default_factory=dict)
    default_branch: str = "main"
    repository: str = "local/project"
    head: str | None = None
    run_number: int = 1
    verbose: bool = False


@dataclass
class Step:
    name: str
    id: str | None
    outcome: str = "skipped"
    conclusion: str = "skipped"
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class Job:
    id: str
    result: str = "skipped"
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    steps: list[Step] = field(default_factory=list)
    summary: str = ""
    error: str = ""


class JobRun:
    """One job on a fresh machine: workspace, HOME, temp dir, environment, step results."""

    def __init__(self, run: WorkflowRun, job_id: str, spec: dict[str, Any]) -> None:
        self.run, self.id, self.spec = run, job_id, spec
        self.root = Path(tempfile.mkdtemp(prefix=f"job-{job_id}-", dir=run.settings.workdir))
        name = run.settings.repository.split("/")[-1]
        self.workspace = self.root / "work" / name / name
        self.temp = self.root / "temp"
        self.home = self.root / "home"
        for directory in (self.workspace, self.temp, self.home):
            directory.mkdir(parents=True)
        self.tracking_id = f"github_{uuid.uuid4()}"
        self.path_prefix: list[str] = []
        self.exported: dict[str, str] = {}  # GITHUB_ENV
        self.steps: dict[str, dict[str, Any]] = {}
        self.failed = False
        self.result = Job(job_id)
        self.log = run.logs / f"{job_id}.log"
        self.post: list[Callable[[], None]] = []

    # ---- environment and expressions

    def machine_env(self) -> dict[str, str]:
        """What the runner machine provides before the workflow's own `env`."""
        env = {k: v for k, v in os.environ.items() if PASS_THROUGH.match(k)}
        env |= self.run.settings.runner_env  # a self-hosted runner's `.env` file
        pip_conf = Path.home() / ".config" / "pip" / "pip.conf"
        if pip_conf.is_file() and "PIP_CONFIG_FILE" not in env:
            env["PIP_CONFIG_FILE"] = str(pip_conf)
        github = self.run.github
        env |= {
            "PATH": os.pathsep.join([*reversed(self.path_prefix), SYSTEM_PATH]),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_EVENT_NAME": github["event_name"],
            "GITHUB_EVENT_PATH": str(self.run.event_path),
            "GITHUB_REF": github["ref"],
            "GITHUB_REF_NAME": github["ref_name"],
            "GITHUB_REF_TYPE": "branch",
            "GITHUB_SHA": github["sha"],
            "GITHUB_REPOSITORY": github["repository"],
            "GITHUB_REPOSITORY_OWNER": github["repository_owner"],
            "GITHUB_RUN_ID": github["run_id"],
            "GITHUB_RUN_NUMBER": github["run_number"],
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_ACTOR": github["actor"],
            "GITHUB_JOB": self.id,
            "GITHUB_HEAD_REF": github["head_ref"],
            "GITHUB_BASE_REF": github["base_ref"],
            "GITHUB_SERVER_URL": github["server_url"],
            "GITHUB_API_URL": github["api_url"],
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": "X64",
            "RUNNER_TEMP": str(self.temp),
            "RUNNER_TOOL_CACHE": str(self.root / "toolcache"),
            "RUNNER_TRACKING_ID": self.tracking_id,
        }
        return env

    def scope(self, env: dict[str, str] | None = None, with_steps: bool = True) -> Scope:
        contexts: dict[str, Any] = {
            "github": self.run.github,
            "needs": self.run.needs_context(self.spec),
            "vars": dict(self.run.settings.variables),
            "secrets": self.run.secrets_context(),
            "inputs": {},
            "matrix": {},
            "strategy": {},
            "runner": {"os": "Linux", "arch": "X64", "temp": str(self.temp)},
            "job": {"status": "failure" if self.failed else "success"},
            "env": dict(env or {}),
        }
        if with_steps:
            contexts["steps"] = self.steps
        return Scope(contexts, self.step_status, self.workspace)

    def step_status(self, name: str) -> bool:
        return {
            "success": not self.failed,
            "failure": self.failed,
            "always": True,
            "cancelled": False,
        }[name]

    def declared_env(self, step: dict[str, Any] | None) -> dict[str, str]:
        """workflow env < job env < GITHUB_ENV < step env, each evaluated in turn."""
        env: dict[str, str] = {}
        for layer in (self.run.workflow.get("env"), self.spec.get("env")):
            for key, value in (layer or {}).items():
                env[key] = to_text(interpolate(value, self.scope(env)))
        env |= self.exported  # literal values, not expressions
        for key, value in ((step or {}).get("env") or {}).items():
            env[key] = to_text(interpolate(value, self.scope(env)))
        return env

    # ---- running

    def execute(self) -> Job:
        start = time.perf_counter()
        timeout = float(self.spec.get("timeout-minutes", 360)) * 60
        try:
            for index, step in enumerate(self.spec.get("steps", [])):
                self.run_step(index, step, deadline=start + timeout)
            scope = self.scope(self.declared_env(None))  # a failed job has outputs too
            for key, value in (self.spec.get("outputs") or {}).items():
                self.result.outputs[key] = to_text(interpolate(value, scope))
        except WorkflowError as error:
            self.failed = True
            self.result.error = str(error)
            self.say(f"ERROR: {error}")
        finally:
            for hook in reversed(self.post):
                with contextlib.suppress(WorkflowError, OSError):
                    hook()
            self.kill_orphans()
        self.result.result = "failure" if self.failed else "success"
        self.result.seconds = time.perf_counter() - start
        return self.result

    def say(self, text: str) -> None:
        with self.log.open("a", encoding="utf-8") as log:
            log.write(self.run.mask(text) + "\n")
        if self.run.settings.verbose:
            print(self.run.mask(text), flush=True)

    def run_step(self, index: int, step: dict[str, Any], deadline: float) -> None:
        name = str(step.get("name") or step.get("uses") or step.get("run", "").splitlines()[0])
        record = Step(name=name, id=step.get("id"))
        self.result.steps.append(record)
        key = step.get("id") or f"__{index}"
        env = self.declared_env(step)
        if not condition(step.get("if"), self.scope(env)):
            self.steps[key] = {"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}
            self.say(f"--- skipped: {name}")
            return
        self.say(f"--- step: {name}")
        start = time.perf_counter()
        timeout = min(deadline, start + float(step.get("timeout-minutes", 360)) * 60)
        if "run" in step and "uses" not in step:
            ok, outputs = self.run_script(step, env, timeout - start)
        elif "uses" in step:
            inputs = {
                k: interpolate(v, self.scope(env)) for k, v in (step.get("with") or {}).items()
            }
            ok, outputs = run_action(self, str(step["uses"]), inputs)
        else:
            raise WorkflowError(f"job {self.id}: step {name!r} has neither run nor uses")
        record.seconds = time.perf_counter() - start
        record.outputs = outputs
        record.outcome = "success" if ok else "failure"
        keep_going = bool(interpolate(step.get("continue-on-error", False), self.scope(env)))
        record.conclusion = "success" if ok or keep_going else "failure"
        self.steps[key] = {
            "outputs": outputs,
            "outcome": record.outcome,
            "conclusion": record.conclusion,
        }
        self.say(f"--- {record.outcome} in {record.seconds:.1f} s: {name}")
        if record.conclusion == "failure":
            self.failed = True

    def run_script(
        self, step: dict[str, Any], env: dict[str, str], timeout_s: float
    ) -> tuple[bool, dict[str, str]]:
        defaults = ((self.run.workflow.get("defaults") or {}).get("run") or {}) | (
            (self.spec.get("defaults") or {}).get("run") or {}
        )
        shell = step.get("shell", defaults.get("shell"))
        if shell not in SHELLS:
            raise WorkflowError(f"job {self.id}: shell {shell!r} is not emulated")
        script = self.temp / f"step-{uuid.uuid4().hex}.sh"
        script.write_text(str(step["run"]), encoding="utf-8")
        cwd = self.workspace / step.get("working-directory", defaults.get("working-directory", "."))
        files = {
            name: self.temp / f"{name.lower()}-{uuid.uuid4().hex}"
            for name in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY")
        }
        for path in files.values():
            path.touch()
        full_env = self.machine_env() | env | {k: str(v) for k, v in files.items()}
        command = [part.replace("{0}", str(script)) for part in SHELLS[shell]]
        ok = self.spawn(command, cwd, full_env, timeout_s)
        outputs = read_command_file(files["GITHUB_OUTPUT"])
        self.exported |= read_command_file(files["GITHUB_ENV"])
        for line in files["GITHUB_PATH"].read_text(encoding="utf-8").splitlines():
            if line.strip():
                self.path_prefix.append(line.strip())
        self.result.summary += files["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8")
        return ok, outputs

    def spawn(self, command: list[str], cwd: Path, env: dict[str, str], timeout_s: float) -> bool:
        """Run a command in its own process group; its output goes to the job log, masked.

        The step ends when its shell exits, as on GitHub: a background process that still
        holds the output pipe does not keep it open (the job's end stops that process).
        """
        lines: list[str] = []
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )

        def pump() -> None:
            for line in process.stdout or ():
                lines.append(line.rstrip("\n"))
                self.say(line.rstrip("\n"))

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            code = process.wait(timeout=max(timeout_s, 1.0))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            code = process.wait()
            self.say(f"step timed out after {timeout_s:.0f} s")
        reader.join(timeout=2.0)
        if code != 0:
            tail = "\n".join(self.run.mask(line) for line in lines[-40:])
            print(f"[{self.id}] exit {code}: {' '.join(command)}\n{tail}", file=sys.stderr)
        return code == 0

    def kill_orphans(self) -> None:
        """What GitHub does at the end of a job: stop every process the job started."""
        for pid in processes_tagged(self.tracking_id):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while processes_tagged(self.tracking_id) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in processes_tagged(self.tracking_id):
            self.say(f"killing orphan process {pid}")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def processes_tagged(tracking_id: str) -> list[int]:
    """Pids whose environment carries this job's RUNNER_TRACKING_ID (ours only)."""
    needle = f"RUNNER_TRACKING_ID={tracking_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


# --------------------------------------------------------------------------- actions

ActionFn = Callable[[JobRun, dict[str, Any]], dict[str, str]]
ACTIONS: dict[str, tuple[set[str], ActionFn]] = {}


def action(name: str, inputs: set[str]) -> Callable[[ActionFn], ActionFn]:
    def register(fn: ActionFn) -> ActionFn:
        ACTIONS[name] = (inputs, fn)
        return fn

    return register


def run_action(job: JobRun, uses: str, inputs: dict[str, Any]) -> tuple[bool, dict[str, str]]:
    """An emulated action; unknown actions and unknown inputs stop the job."""
    name = uses.split("@", 1)[0].lower()
    if name not in ACTIONS:
        raise WorkflowError(f"job {job.id}: action {uses} is not emulated and its `if` is true")
    known, fn = ACTIONS[name]
    unknown = set(inputs) - known
    if unknown:
        raise WorkflowError(f"job {job.id}: {name} inputs {sorted(unknown)} are not emulated")
    try:
        return True, fn(job, inputs)
    except ActionFailed as error:
        job.say(f"##[error]{name}: {error}")
        print(f"[{job.id}] {name} failed: {error}", file=sys.stderr)
        return False, {}


class ActionFailed(Exception):
    """The emulated action failed the way the real one would (the step fails)."""


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", "-c", "advice.detachedHead=false", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ActionFailed(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


@action(
    "actions/checkout",
    {"persist-credentials", "fetch-depth", "ref", "repository", "path", "clean", "lfs"},
)
def checkout(job: JobRun, inputs: dict[str, Any]) -> dict[str, str]:
    """A fresh clone of the run's commit, fetched the way actions/checkout fetches it."""
    github = job.run.github
    if inputs.get("ref") or inputs.get("repository") not in (None, github["repository"]):
        raise WorkflowError("actions/checkout: only the run's own repository and ref are emulated")
    target = job.workspace / str(inputs.get("path") or ".")
    target.mkdir(parents=True, exist_ok=True)
    git("init", "--quiet", str(target), cwd=job.root)
    git("remote", "add", "origin", job.run.origin.as_uri(), cwd=target)
    depth = int(to_number(inputs.get("fetch-depth", 1)))
    ref, sha = github["ref"], github["sha"]
    remote_ref = (
        f"refs/remotes/origin/{ref.removeprefix('refs/heads/')}"
        if ref.startswith("refs/heads/")
        else f"refs/remotes/{ref.removeprefix('refs/')}"
    )
    refspec = [f"+{sha}:{remote_ref}"]
    if depth <= 0:
        branches = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
        refspec = branches if ref.startswith("refs/heads/") else [*branches, *refspec]
        git("fetch", "--quiet", "--prune", "origin", *refspec, cwd=target)
    else:
        git("fetch", "--quiet", "--no-tags", f"--depth={depth}", "origin", *refspec, cwd=target)
    if ref.startswith("refs/heads/"):
        branch = ref.removeprefix("refs/heads/")
        git("checkout", "--quiet", "--force", "-B", branch, sha, cwd=target)
        git("branch", "--quiet", f"--set-upstream-to={remote_ref}", branch, cwd=target)
    else:
        git("checkout", "--quiet", "--force", sha, cwd=target)
    return {"ref": ref, "commit": sha}


@action(
    "actions/setup-python",
    {"python-version", "python-version-file", "cache", "cache-dependency-path", "check-latest"},
)
def setup_python(job: JobRun, inputs: dict[str, Any]) -> dict[str, str]:
    """The given interpreter first on PATH, if it is the version asked for; `cache: pip` warm."""
    wanted = str(inputs.get("python-version") or "").strip()
    if not wanted and inputs.get("python-version-file"):
        path = job.workspace / str(inputs["python-version-file"])
        if not path.is_file():
            raise ActionFailed(f"python-version-file {path.name} not found")
        lines = [line.strip() for line in path.read_text().splitlines()]
        wanted = next((line for line in lines if line and not line.startswith("#")), "")
    done = subprocess.run(
        [job.run.settings.python, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
    )
    have = done.stdout.strip()
    if not wanted or not (have == wanted or have.startswith(wanted + ".")):
        raise ActionFailed(f"the workflow asks for Python {wanted!r}; --python is {have}")
    bin_dir = job.root / "toolcache" / "Python" / have / "x64" / "bin"
    bin_dir.mkdir(parents=True)
    major_minor = ".".join(have.split(".")[:2])
    for name in ("python", "python3", f"python{major_minor}"):
        (bin_dir / name).symlink_to(job.run.settings.python)
    job.path_prefix.append(str(bin_dir))
    job.exported["pythonLocation"] = str(bin_dir.parent)
    cache = str(inputs.get("cache") or "")
    hit = "false"
    if cache == "pip":
        pip_cache = job.run.settings.cache_dir / "pip"
        hit = "true" if pip_cache.is_dir() and any(pip_cache.iterdir()) else "false"
        pip_cache.mkdir(parents=True, exist_ok=True)
        job.exported["PIP_CACHE_DIR"] = str(pip_cache)
    elif cache:
        raise WorkflowError(f"actions/setup-python: cache {cache!r} is not emulated")
    return {"python-version": have, "python-path": str(bin_dir / "python"), "cache-hit": hit}


def hash_files(root: Path, patterns: list[str]) -> str:
    """hashFiles(): sha256 over the sha256 of each matching file, in path order."""
    total = hashlib.sha256()
    for path in sorted(p for pattern in patterns for p in root.glob(pattern) if p.is_file()):
        total.update(hashlib.sha256(path.read_bytes()).digest())
    return total.hexdigest()


@action("actions/cache", {"path", "key", "restore-keys"})
def cache(job: JobRun, inputs: dict[str, Any]) -> dict[str, str]:
    """Restore `path` from the run's cache store by key (or prefix); save it at job end if missed."""
    store = job.run.settings.cache_dir / "actions-cache"
    paths = [line.strip() for line in str(inputs["path"]).splitlines() if line.strip()]
    if len(paths) != 1:
        raise WorkflowError("actions/cache: only one path is emulated")
    target = Path(os.path.expanduser(paths[0].replace("~", str(job.home), 1)))
    key = str(inputs["key"])
    candidates = [key] + [k.strip() for k in str(inputs.get("restore-keys") or "").splitlines()]
    hit_key = None
    for candidate in candidates:
        if (store / candidate).is_dir():
            hit_key = candidate
            break
        matches = sorted(store.glob(glob.escape(candidate) + "*"), key=lambda p: p.stat().st_mtime)
        if candidate != key and matches:
            hit_key = matches[-1].name
            break
    if hit_key:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(store / hit_key, target, copy_function=os.link, dirs_exist_ok=True)

    def save() -> None:
        if hit_key != key and target.is_dir() and job.step_status("success"):
            staging = store / f".{key}.{uuid.uuid4().hex}"
            shutil.copytree(target, staging, copy_function=os.link)
            with contextlib.suppress(OSError):
                staging.rename(store / key)
            shutil.rmtree(staging, ignore_errors=True)

    store.mkdir(parents=True, exist_ok=True)
    job.post.append(save)
    return {"cache-hit": "true" if hit_key == key else "false"}


def search_path(pattern: str) -> str:
    """The literal directory part of a pattern, where @actions/glob starts looking."""
    parts = []
    for part in pattern.strip("/").split("/"):
        if glob.has_magic(part):
            break
        parts.append(part)
    return "/".join(parts) or "."


def artifact_files(
    workspace: Path, patterns: list[str], hidden: bool
) -> tuple[list[Path], Path | None]:
    """The files upload-artifact would send, and the root their names are relative to."""
    include = [p for p in patterns if not p.startswith("!")]
    exclude = [p[1:] for p in patterns if p.startswith("!")]
    roots = sorted({search_path(p) for p in include})
    roots = [r for r in roots if not any(r != o and r.startswith(o.rstrip("/") + "/") for o in roots if o != ".") and not (r != "." and "." in roots)]  # fmt: skip
    found: dict[str, Path] = {}
    for pattern in include:
        start = search_path(pattern)
        matches = (
            glob.glob(pattern.rstrip("/"), root_dir=workspace, recursive=True, include_hidden=True)
            if glob.has_magic(pattern)
            else [pattern.rstrip("/")]
        )
        for match in matches:
            path = workspace / match
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for file in files:
                relative = file.relative_to(workspace).as_posix()
                from_start = Path(relative).relative_to(start) if start != "." else Path(relative)
                names = [*([Path(start).name] if start != "." else []), *from_start.parts]
                if not hidden and any(n.startswith(".") for n in names):
                    continue
                if any(fnmatch.fnmatch(relative, e.rstrip("/")) or relative.startswith(e.rstrip("/") + "/") for e in exclude):  # fmt: skip
                    continue
                found[relative] = file
    files = [found[k] for k in sorted(found)]
    if not files:
        return [], None
    if len(roots) > 1:
        root = workspace / os.path.commonpath(roots)
    elif len(files) == 1 and files[0] == workspace / roots[0]:
        root = files[0].parent
    else:
        root = workspace / roots[0]
    return files, root


@action(
    "actions/upload-artifact",
    {"name", "path", "if-no-files-found", "retention-days", "include-hidden-files", "overwrite",
     "compression-level"},
)  # fmt: skip
def upload_artifact(job: JobRun, inputs: dict[str, Any]) -> dict[str, str]:
    """Copy exactly the declared files (v4 rules: hidden files, root, unique name) to the store."""
    name = str(inputs.get("name") or "artifact")
    patterns = [line.strip() for line in str(inputs["path"]).splitlines() if line.strip()]
    hidden = truthy(inputs.get("include-hidden-files", False))
    files, root = artifact_files(job.workspace, patterns, hidden)
    if not files or root is None:
        policy = str(inputs.get("if-no-files-found") or "warn")
        message = f"No files were found with the provided path: {' '.join(patterns)}"
        if policy == "error":
            raise ActionFailed(message)
        job.say(f"##[{'warning' if policy == 'warn' else 'debug'}]{message}")
        return {}
    target = job.run.artifacts / name
    if target.exists():
        if not truthy(inputs.get("overwrite", False)):
            raise ActionFailed(f"an artifact named {name!r} already exists in this run (409)")
        shutil.rmtree(target)
    for file in files:
        destination = target / file.relative_to(root)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, destination)  # zip keeps no modes or owners
    job.say(f"artifact {name}: {len(files)} file(s)")
    return {"artifact-id": name}


@action("actions/download-artifact", {"name", "path"})
def download_artifact(job: JobRun, inputs: dict[str, Any]) -> dict[str, str]:
    """Copy one artifact (or every artifact, each in its own directory) into the workspace."""
    destination = job.workspace / str(inputs.get("path") or ".")
    name = inputs.get("name")
    names = [str(name)] if name else sorted(p.name for p in job.run.artifacts.iterdir())
    for item in names:
        source = job.run.artifacts / item
        if not source.is_dir():
            raise ActionFailed(
                f"Unable to download artifact(s): Artifact not found for name: {item}"
            )
        target = destination if name else destination / item
        shutil.copytree(source, target, copy_function=shutil.copyfile, dirs_exist_ok=True)
    return {"download-path": str(destination)}


# --------------------------------------------------------------------------- the run


class GitHubApi:
    """The part of GitHub's REST API a workflow may call, on loopback; requests are recorded."""

    def __init__(self, repository: str, token: str) -> None:
        self.repository, self.token = repository, token
        self.dispatches: list[dict[str, Any]] = []
        self.job = ""  # the job running now, recorded with each request
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                status, message = api.dispatch(self)
                body = json.dumps({"message": message}).encode() if message else b""
                self.send_response(status)
                if body:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def dispatch(self, request: http.server.BaseHTTPRequestHandler) -> tuple[int, str]:
        """GitHub's answers: 401 without the job's token, 404 elsewhere, 422 without event_type."""
        if request.command != "POST" or request.path != f"/repos/{self.repository}/dispatches":
            return 404, f"{request.command} {request.path} is not emulated by run_workflow.py"
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, "Bad credentials"
        length = int(request.headers.get("Content-Length") or 0)
        try:
            body = json.loads(request.rfile.read(length) or b"null")
        except ValueError:
            return 400, "Problems parsing JSON"
        if not isinstance(body, dict) or not isinstance(body.get("event_type"), str):
            return 422, "Invalid request: event_type is required"
        payload = body.get("client_payload", {})
        if not isinstance(payload, dict) or len(payload) > 10:
            return 422, "client_payload: an object with at most 10 top-level properties"
        self.dispatches.append({"job": self.job, "event_type": body["event_type"],
                                "client_payload": payload, "time": time.time()})  # fmt: skip
        return 204, ""

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class WorkflowRun:
    """Resolve the event, then run each job (in `needs` order) on a fresh machine."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.workdir.mkdir(parents=True, exist_ok=True)
        self.artifacts = settings.workdir / "artifacts"
        self.logs = settings.workdir / "logs"
        for directory in (self.artifacts, self.logs):
            directory.mkdir(exist_ok=True)
        self.origin = settings.workdir / "origin.git"
        self.jobs: dict[str, Job] = {}
        self.token = token_source.token_urlsafe(24)
        self.api = GitHubApi(settings.repository, self.token)
        self.github = self.prepare_origin()
        self.event_path = settings.workdir / "event.json"
        self.event_path.write_text(json.dumps(self.github["event"], indent=2))
        text = git("show", f"{self.github['sha']}:{settings.workflow}", cwd=self.origin)
        self.workflow: dict[Any, Any] = yaml.safe_load(text)

    def mask(self, text: str) -> str:
        for value in [*self.settings.secrets.values(), self.token]:
            if value:
                text = text.replace(value, "***")
        return text

    def secrets_context(self) -> dict[str, str]:
        return {**self.settings.secrets, "GITHUB_TOKEN": self.token}

    def prepare_origin(self) -> dict[str, Any]:
        """A mirror of the repository plays GitHub; a pull request gets its merge ref there."""
        s = self.settings
        shutil.rmtree(self.origin, ignore_errors=True)
        git("clone", "--quiet", "--mirror", str(s.repo.resolve()), str(self.origin), cwd=s.workdir)
        owner, name = s.repository.split("/", 1)
        repository = {
            "name": name,
            "full_name": s.repository,
            "owner": {"login": owner},
            "default_branch": s.default_branch,
        }
        ref, head_ref, base_ref = s.ref, "", ""
        if s.event == "pull_request":
            if not s.head:
                raise WorkflowError("--event pull_request needs --head BRANCH")
            base_ref, head_ref = s.ref.removeprefix("refs/heads/"), s.head
            ref = self.merge_ref(base_ref, head_ref)
        sha = git("rev-parse", f"{ref}^{{commit}}", cwd=self.origin)
        event: dict[str, Any] = {"repository": repository, "sender": {"login": "runner"}}
        if s.event == "push":
            event |= {"ref": ref, "after": sha, "head_commit": {"id": sha}}
        elif s.event == "pull_request":
            head_sha = git("rev-parse", f"refs/heads/{head_ref}", cwd=self.origin)
            base_sha = git("rev-parse", f"refs/heads/{base_ref}", cwd=self.origin)
            event |= {
                "action": "synchronize",
                "number": 1,
                "pull_request": {
                    "number": 1,
                    "head": {"ref": head_ref, "sha": head_sha},
                    "base": {"ref": base_ref, "sha": base_sha},
                },
            }
        elif s.event == "schedule":
            cron = ((self.workflow_triggers_raw(sha).get("schedule") or [{}])[0]).get("cron", "")
            event = {"schedule": cron}  # GitHub's schedule payload has no repository
        elif s.event == "workflow_dispatch":
            event |= {"ref": ref, "inputs": {}}
        elif s.event == "repository_dispatch":
            event |= {"action": "drift-detected", "client_payload": {}}
        else:
            raise WorkflowError(f"event {s.event!r} is not emulated")
        return {
            "event_name": s.event,
            "event": event,
            "ref": ref,
            "ref_name": ref.removeprefix("refs/heads/").removeprefix("refs/"),
            "sha": sha,
            "repository": s.repository,
            "repository_owner": owner,
            "actor": "runner",
            "run_id": str(int(time.time())),
            "run_number": str(s.run_number),
            "head_ref": head_ref,
            "base_ref": base_ref,
            "server_url": "https://github.com",
            "api_url": self.api.url,
            "workspace": "",
            "token": self.token,
        }

    def workflow_triggers_raw(self, sha: str) -> dict[str, Any]:
        text = git("show", f"{sha}:{self.settings.workflow}", cwd=self.origin)
        on = yaml.safe_load(text).get(True) or {}
        return on if isinstance(on, dict) else {}

    def merge_ref(self, base: str, head: str) -> str:
        """refs/pull/1/merge: the head branch merged into the base, as GitHub prepares it."""
        scratch = Path(tempfile.mkdtemp(prefix="pr-merge-", dir=self.settings.workdir))
        git("clone", "--quiet", str(self.origin), str(scratch), cwd=self.settings.workdir)
        git("checkout", "--quiet", base, cwd=scratch)
        git("-c", "user.name=GitHub", "-c", "user.email=noreply@github.com", "merge",
            "--quiet", "--no-ff", "--no-edit", f"origin/{head}", cwd=scratch)  # fmt: skip
        git("push", "--quiet", str(self.origin), "HEAD:refs/pull/1/merge",
            f"refs/remotes/origin/{head}:refs/pull/1/head", cwd=scratch)  # fmt: skip
        shutil.rmtree(scratch, ignore_errors=True)
        return "refs/pull/1/merge"

    def triggered(self) -> str | None:
        """None if this workflow runs for the event, else why not."""
        on = self.workflow.get(True)
        triggers = {on: None} if isinstance(on, str) else dict.fromkeys(on) if isinstance(on, list) else on  # fmt: skip
        if self.settings.event not in (triggers or {}):
            return f"the workflow has no `on: {self.settings.event}`"
        filters = (triggers or {}).get(self.settings.event) or {}
        if any(key in filters for key in ("paths", "paths-ignore", "branches-ignore", "tags")):
            raise WorkflowError("path, tag and branches-ignore filters are not emulated")
        branch = self.github["base_ref"] or self.github["ref_name"]
        branches = filters.get("branches") if isinstance(filters, dict) else None
        if branches and not any(branch_matches(branch, pattern) for pattern in branches):
            return f"branch {branch} is not in on.{self.settings.event}.branches"
        return None

    def needs_of(self, spec: dict[str, Any]) -> list[str]:
        needs = spec.get("needs") or []
        return [needs] if isinstance(needs, str) else list(needs)

    def needs_context(self, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            name: {"result": self.jobs[name].result, "outputs": dict(self.jobs[name].outputs)}
            for name in self.needs_of(spec)
        }

    def ancestors(self, job_id: str) -> set[str]:
        found: set[str] = set()
        stack = self.needs_of(self.workflow["jobs"][job_id])
        while stack:
            name = stack.pop()
            if name not in found:
                found.add(name)
                stack.extend(self.needs_of(self.workflow["jobs"][name]))
        return found

    def order(self) -> list[str]:
        jobs = self.workflow.get("jobs") or {}
        done: list[str] = []
        while len(done) < len(jobs):
            ready = [
                j for j in jobs if j not in done and all(n in done for n in self.needs_of(jobs[j]))
            ]
            if not ready:
                raise WorkflowError(f"jobs {sorted(set(jobs) - set(done))} have cyclic needs")
            done.append(ready[0])
        for job_id, spec in jobs.items():
            unknown = [n for n in self.needs_of(spec) if n not in jobs]
            if unknown:
                raise WorkflowError(f"job {job_id} needs unknown job(s) {unknown}")
            unsupported = UNSUPPORTED_JOB_KEYS & set(spec)
            if unsupported:
                raise WorkflowError(f"job {job_id}: {sorted(unsupported)} are not emulated")
            runs_on = str(spec.get("runs-on", ""))
            if not runs_on.startswith("ubuntu-"):
                raise WorkflowError(f"job {job_id}: runs-on {runs_on!r} is not emulated")
        return done

    def job_scope(self, job_id: str) -> Scope:
        ancestors = self.ancestors(job_id)
        results = [self.jobs[a].result for a in ancestors]

        def status(name: str) -> bool:
            return {
                "success": all(r == "success" for r in results),
                "failure": any(r == "failure" for r in results),
                "always": True,
                "cancelled": False,
            }[name]

        contexts = {
            "github": self.github,
            "needs": self.needs_context(self.workflow["jobs"][job_id]),
            "vars": dict(self.settings.variables),
            "inputs": {},
        }
        return Scope(contexts, status)

    def execute(self) -> int:
        """Run every job; return 0 if none failed."""
        why_not = self.triggered()
        if why_not:
            print(f"not triggered: {why_not}", file=sys.stderr)
            return 3
        total = time.perf_counter()
        for job_id in self.order():
            spec = self.workflow["jobs"][job_id]
            if not condition(spec.get("if"), self.job_scope(job_id)):
                self.jobs[job_id] = Job(job_id, result="skipped")
                print(f"job {job_id}: skipped", flush=True)
                continue
            print(f"job {job_id}: running", flush=True)
            self.api.job = job_id
            job = JobRun(self, job_id, spec)
            self.jobs[job_id] = job.execute()
            times = ", ".join(f"{s.name} {s.seconds:.1f} s" for s in job.result.steps if s.seconds)
            print(f"job {job_id}: {job.result.result} in {job.result.seconds:.1f} s ({times})")
            if job.result.error:
                print(f"job {job_id}: {job.result.error}", file=sys.stderr)
            self.write_report(time.perf_counter() - total)
            if self.settings.verbose and job.result.summary:
                print(f"--- summary of {job_id}\n{job.result.summary}")
        self.write_report(time.perf_counter() - total)
        failed = [j.id for j in self.jobs.values() if j.result == "failure"]
        print(f"workflow: {'failure: ' + ', '.join(failed) if failed else 'success'} "
              f"in {time.perf_counter() - total:.1f} s")  # fmt: skip
        return 1 if failed else 0

    def write_report(self, seconds: float) -> None:
        report = {
            "event": self.settings.event,
            "ref": self.github["ref"],
            "sha": self.github["sha"],
            "seconds": seconds,
            "dispatches": self.api.dispatches,
            "jobs": {
                job_id: {
                    "result": job.result,
                    "outputs": job.outputs,
                    "seconds": job.seconds,
                    "error": job.error,
                    "summary": self.mask(job.summary),
                    "steps": [
                        {
                            "name": s.name,
                            "id": s.id,
                            "outcome": s.outcome,
                            "conclusion": s.conclusion,
                            "seconds": s.seconds,
                        }
                        for s in job.steps
                    ],
                }
                for job_id, job in self.jobs.items()
            },
        }
        path = self.settings.workdir / "run.json"
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        temp.replace(path)


def branch_matches(branch: str, pattern: str) -> bool:
    """on.<event>.branches glob: `*` stops at '/', `**` does not."""
    regex = re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", ".")
    return re.fullmatch(regex, branch) is not None


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--event", required=True,
                        choices=["push", "pull_request", "schedule", "workflow_dispatch", "repository_dispatch"])  # fmt: skip
    parser.add_argument("--ref", default=None, help="refs/heads/BRANCH (default: the default branch; for pull_request: the base)")  # fmt: skip
    parser.add_argument("--head", default=None, help="pull_request: the branch to merge")
    parser.add_argument("--repo", type=Path, default=Path("."), help="a git repository (default: here)")  # fmt: skip
    parser.add_argument("--workflow", default=".github/workflows/ml-pipeline.yml")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a new temp dir")
    parser.add_argument("--python", default=sys._base_executable, help="what setup-python provides")  # fmt: skip
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "run-workflow",
                        help="the runner's warm caches (pip, actions/cache), shared by jobs and runs")  # fmt: skip
    parser.add_argument("--secret", action="append", default=[], metavar="NAME",
                        help="a secret, its value taken from this environment variable")  # fmt: skip
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--runner-env", action="append", default=[], metavar="NAME=VALUE",
                        help="set for every job by the machine, as a self-hosted runner's .env file does")  # fmt: skip
    parser.add_argument("--default-branch", default="main")
    parser.add_argument("--repository", default="local/project", help="owner/name")
    parser.add_argument("--run-number", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="print every step's output")
    args = parser.parse_args(argv)
    missing = [name for name in args.secret if name not in os.environ]
    if missing:
        parser.error(f"secret(s) {missing} are not set in the environment")
    bad_vars = [v for v in [*args.var, *args.runner_env] if "=" not in v]
    if bad_vars:
        parser.error(f"--var and --runner-env want NAME=VALUE, got {bad_vars}")
    return Settings(
        repo=args.repo,
        workflow=args.workflow,
        event=args.event,
        ref=args.ref or f"refs/heads/{args.default_branch}",
        workdir=(args.workdir or Path(tempfile.mkdtemp(prefix="run-workflow-"))).resolve(),
        python=str(Path(args.python).resolve()),
        cache_dir=args.cache_dir.resolve(),
        secrets={name: os.environ[name] for name in args.secret},
        variables=dict(v.split("=", 1) for v in args.var),
        runner_env=dict(v.split("=", 1) for v in args.runner_env),
        default_branch=args.default_branch,
        repository=args.repository,
        head=args.head,
        run_number=args.run_number,
        verbose=args.verbose,
    )


@contextlib.contextmanager
def interrupted_cleanup(run: WorkflowRun) -> Iterator[None]:
    """Ctrl-C stops the run; GitHub would cancel it (each job still kills its own processes)."""
    try:
        yield
    except KeyboardInterrupt:
        run.write_report(0.0)
        raise


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the running job still stops the processes it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"run-workflow: {settings.event} {settings.ref} in {settings.workdir}", flush=True)
    try:
        run = WorkflowRun(settings)
        try:
            with interrupted_cleanup(run):
                return run.execute()
        finally:
            run.api.close()
    except WorkflowError as error:
        print(f"run-workflow: {error}", file=sys.stderr)
        return 2
    except ActionFailed as error:
        print(f"run-workflow: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
