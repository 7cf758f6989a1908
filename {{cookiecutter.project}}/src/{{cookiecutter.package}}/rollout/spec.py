"""The rollout spec (`params.yaml: rollout`) and serving settings, validated once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ConfigError


class SpecError(ConfigError):
    """params.yaml's `rollout` or `serve` section says something impossible."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Shadow(_Spec):
    """Mirror live traffic to the canary before it gets any; compare the answers."""

    enabled: bool = True
    duration_s: float = Field(6.0, ge=0)
    sample: float = Field(1.0, gt=0, le=1)
    queue: int = Field(256, ge=1)
    # a copy slower than this is given up and counted as slow; more than 1% slow copies
    # fails the shadow phase, so it must be at least guardrails.max_p99_ms
    timeout_ms: float = Field(250.0, gt=0)
    max_disagreement: float = Field(0.2, ge=0, le=1)


class Step(_Spec):
    """One canary weight and how long to watch it."""

    weight: int = Field(ge=0, le=100)
    pause_s: float = Field(ge=0)


class Analysis(_Spec):
    """How often each engine looks, how much evidence it needs, and how it counts."""

    interval_s: float = Field(0.25, gt=0)
    # requests a step needs before it can pass (see docs/canary.md for what 200 can see)
    min_requests: int = Field(200, ge=1)
    # how long a step short of min_requests after its pause keeps waiting for traffic
    # (local delivery; Argo Rollouts judges a step at the end of its pause)
    max_wait_s: float = Field(180.0, ge=0)
    # 4xx are the caller's mistake: left out of the judged requests, or counted as answered
    client_errors: Literal["excluded", "ok"] = "excluded"
    # repeated looks at a step: sequential and bonferroni both keep the step's false-fail
    # rate at a limit to alpha (sequential with the smaller z: each window holds the last)
    correction: Literal["sequential", "bonferroni", "none"] = "sequential"


class Guardrails(_Spec):
    """Absolute limits on the canary."""

    max_error_rate: float = Field(0.05, ge=0, le=1)
    max_p99_ms: float = Field(250.0, gt=0)


class Relative(_Spec):
    """Limits on the canary relative to stable over the same window."""

    max_error_rate_increase: float = Field(0.02, ge=0, le=1)
    max_p99_ratio: float = Field(2.0, ge=1)
    p99_floor_ms: float = Field(25.0, ge=0)
    alpha: float = Field(0.01, gt=0, lt=1)


class Inconclusive(_Spec):
    """What a step still short of its requests after `analysis.max_wait_s` does."""

    policy: Literal["rollback", "promote"] = "rollback"


class Loadgen(_Spec):
    """The load generator that gives a laptop canary traffic to judge."""

    enabled: bool = True
    rps: float = Field(150.0, gt=0)
    concurrency: int = Field(4, ge=1)


class Rollout(_Spec):
    """The whole rollout spec."""

    shadow: Shadow = Shadow()
    steps: tuple[Step, ...]
    analysis: Analysis = Analysis()
    guardrails: Guardrails = Guardrails()
    relative: Relative = Relative()
    inconclusive: Inconclusive = Inconclusive()
    loadgen: Loadgen = Loadgen()

    @model_validator(mode="after")
    def _ends_at_full_weight(self) -> Rollout:
        weights = [s.weight for s in self.steps]
        if not weights or weights[-1] != 100:
            raise ValueError("steps must end with weight 100")
        if weights != sorted(weights):
            raise ValueError(f"step weights must not decrease: {weights}")
        if self.shadow.timeout_ms < self.guardrails.max_p99_ms:
            raise ValueError(
                f"shadow.timeout_ms ({self.shadow.timeout_ms:g}) must be at least "
                f"guardrails.max_p99_ms ({self.guardrails.max_p99_ms:g}): a shadow copy cut "
                "off sooner could never show the new model as too slow"
            )
        return self


class Serve(_Spec):
    """Where the local servers listen and how much one request may carry."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    router_port: int = Field(8000, ge=0, le=65535)
    staging_port: int = Field(8001, ge=0, le=65535)
    max_batch: int = Field(1000, ge=1)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    ready_timeout_s: float = Field(60.0, gt=0)
    # every prediction as a JSON line, one file per server process; `-` stdout, `off` none
    prediction_log: str = "logs/predictions-{variant}-{pid}.jsonl"


def _format(error: ValidationError, section: str) -> str:
    return "\n".join(
        f"  {section}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
    )


def parse_rollout(raw: dict[str, Any]) -> Rollout:
    """Validate a `rollout` mapping; SpecError names the key."""
    try:
        return Rollout.model_validate(raw)
    except ValidationError as error:
        raise SpecError(
            f"params.yaml: invalid rollout spec:\n{_format(error, 'rollout')}"
        ) from None


def parse_serve(raw: dict[str, Any] | None) -> Serve:
    """Validate a `serve` mapping (absent means defaults)."""
    try:
        return Serve.model_validate(raw or {})
    except ValidationError as error:
        raise SpecError(
            f"params.yaml: invalid serve settings:\n{_format(error, 'serve')}"
        ) from None


def load_specs(path: str | Path = "params.yaml") -> tuple[Rollout, Serve]:
    """Read `rollout` and `serve` from params.yaml."""
    from ..config import load_config  # config types its sections with this module's models

    config = load_config(path)
    return config.rollout, config.serve
