"""Generate a realistic sample table from the contract, with signal a good model can learn.

`--drift D` (0 to 1) generates a later batch in which the population and the concept have
moved by D: what production sends months after training (drift checks, retraining demos).

Runs with the standard library and PyYAML only, so the post-generation hook can call it
before any virtual environment exists: `python src/<package>/sample_data.py --help`.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import random
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

Row = dict[str, Any]
RowMaker = Callable[[random.Random, int], Row]
BuiltInRow = Callable[[random.Random, int, float], Row]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _timestamp(rng: random.Random, low: str, high: str) -> str:
    start, end = datetime.fromisoformat(low), datetime.fromisoformat(high)
    seconds = rng.uniform(0, (end - start).total_seconds())
    return (start + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


{% if cookiecutter.__sample == "churn" %}# keeps the churn rate of a drifted batch near the original's despite higher spend and calls
DRIFT_INTERCEPT = 2.0


def churn_row(rng: random.Random, i: int, drift: float = 0.0) -> Row:
    """One customer; churn rises with monthly contracts, support calls and spend, falls with tenure.

    With drift, a price rise: spend and support calls go up, more monthly contracts, and the
    concept moves (a competitor courts enterprise customers, spend weighs more, tenure less).
    """
    contract = rng.choices(
        ["monthly", "annual", "multi-year"],
        weights=[0.55 + 0.15 * drift, 0.3 - 0.1 * drift, 0.15 - 0.05 * drift],
    )[0]
    enterprise = int(rng.random() < 0.22)
    tenure = min(120, int(rng.expovariate(1 / (30 if contract == "monthly" else 48))))
    spend = min(500.0, max(5.0, rng.lognormvariate(4.1 + 0.35 * drift + 0.6 * enterprise, 0.45)))
    calls = min(30, int(rng.expovariate(1 / (2.2 + 1.5 * drift))))
    region = rng.choices(
        ["north", "south", "east", "west", "central", "coastal", "mountain", "islands"],
        weights=[20, 18, 16, 15, 12, 10, 6, 3],
    )[0]
    senior = int(rng.random() < 0.18)
    signup = _timestamp(rng, "2015-01-01", "2026-06-30")
    hour = int(signup[11:13])
    logit = (
        -0.9
        + {"monthly": 1.1, "annual": -0.7, "multi-year": -1.6}[contract]
        - (0.035 - 0.025 * drift) * tenure
        + (0.006 + 0.012 * drift) * (spend - 60)
        + 0.32 * calls
        - (0.5 - 2.0 * drift) * enterprise
        - DRIFT_INTERCEPT * drift
        + (0.35 if region in ("islands", "mountain") else 0.0)
        + (0.25 if hour < 6 else 0.0)
    )
    return {
        "customer_id": f"C{i:07d}",
        "tenure_months": tenure,
        "monthly_spend": round(spend, 2),
        "contract_type": contract,
        "region": region,
        "is_enterprise": enterprise,
        "is_senior": senior,
        "support_calls": "" if rng.random() < 0.02 else calls,
        "signup_at": signup,
        "churned": int(rng.random() < _sigmoid(logit)),
    }


{% endif %}{% if cookiecutter.__sample == "credit-risk" %}def credit_risk_row(rng: random.Random, i: int, drift: float = 0.0) -> Row:
    """One loan applicant; default risk falls with credit score and rises with debt-to-income.

    With drift, a downturn: lower scores and incomes, and debt-to-income weighs more than tier.
    """
    score = int(min(850, max(300, rng.gauss(690 - 40 * drift, 70))))
    tier = "LOW" if score >= 720 else ("MEDIUM" if score >= 640 else "HIGH")
    if rng.random() < 0.1:  # tiers are assigned by people, not only by score
        tier = rng.choice(["LOW", "MEDIUM", "HIGH"])
    income = min(2_000_000.0, max(5_000.0, rng.lognormvariate(11.0 - 0.3 * drift, 0.55)))
    loan = min(500_000.0, max(1_000.0, income * rng.uniform(0.05, 1.6)))
    years = min(50, int(rng.expovariate(1 / 8)))
    age_band = rng.choices(["18-25", "26-40", "41-60", "60+"], weights=[20, 30, 30, 20])[0]
    logit = (
        -2.2
        - 0.016 * (score - 690)
        + (1.3 + 1.2 * drift) * math.log(loan / income + 0.1)
        + {"LOW": -0.6, "MEDIUM": 0.0, "HIGH": 1.2 - 0.8 * drift}[tier]
        - (0.04 - 0.06 * drift) * years
    )
    return {
        "customer_id": f"A{i:07d}",
        "credit_score": score,
        "loan_amount": round(loan, 2),
        "annual_income": "" if rng.random() < 0.03 else round(income, 2),
        "risk_tier": tier,
        "employment_years": years,
        "age_band": age_band,
        "label": int(rng.random() < _sigmoid(logit)),
    }


{% endif %}{% if cookiecutter.__sample == "insurance-cost" %}def insurance_cost_row(rng: random.Random, i: int, drift: float = 0.0) -> Row:
    """One policy holder's yearly claims cost; it rises with age, BMI above 25, children, the
    plan's cover and doctor visits, and much more for smokers (more still with a high BMI).

    With drift, medical inflation: every cost rises, and smoking and visits weigh more.
    """
    age = rng.randint(18, 64)
    sex = rng.choice(["female", "male"])
    bmi = min(50.0, max(16.0, rng.gauss(30.5 + 1.5 * drift, 6.0)))
    children = min(5, int(rng.expovariate(1 / 1.1)))
    smoker = "yes" if rng.random() < 0.2 + 0.05 * drift else "no"
    region = rng.choice(["northeast", "northwest", "southeast", "southwest"])
    plan = rng.choices(["bronze", "silver", "gold"], weights=[45, 35, 20])[0]
    visits = min(40, int(rng.expovariate(1 / (3.0 + 0.02 * age))))
    expected = (
        1500.0
        + 260.0 * age
        + 350.0 * max(bmi - 25.0, 0.0)
        + 500.0 * children
        + {"bronze": 0.0, "silver": 1200.0, "gold": 2500.0}[plan]
        + (180.0 + 120.0 * drift) * visits
        + (400.0 if region == "southeast" else 0.0)
    )
    if smoker == "yes":
        expected += (14000.0 + 6000.0 * drift) + 900.0 * max(bmi - 30.0, 0.0)
    cost = min(150_000.0, max(500.0, expected * (1 + 0.3 * drift) * rng.lognormvariate(0, 0.25)))
    return {
        "policy_id": f"P{i:07d}",
        "age": age,
        "sex": sex,
        "bmi": round(bmi, 1),
        "children": children,
        "smoker": smoker,
        "region": region,
        "plan": plan,
        "visits_last_year": "" if rng.random() < 0.02 else visits,
        "annual_cost": round(cost, 2),
    }


{% endif %}{% if cookiecutter.__sample == "support-tickets" %}PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_CUTS = (0.0, 1.6, 3.0)  # an ordered logit: the latent urgency crosses these
TRIAGE_SCALE = 2.5


def support_ticket_row(rng: random.Random, i: int, drift: float = 0.0) -> Row:
    """One support ticket and the priority a triage team gave it: higher when it reports an
    outage, affects many users, comes from an enterprise plan or by phone, or is about login,
    the API or integrations.

    With drift, a product launch: more tickets about the API and integrations, from more
    free-plan users, and the team weighs affected users more than the plan.
    """
    plan = rng.choices(
        ["free", "pro", "enterprise"], weights=[45 + 15 * drift, 35, 20 - 5 * drift]
    )[0]
    channel = rng.choices(["email", "chat", "phone"], weights=[50, 35, 15])[0]
    area = rng.choices(
        ["billing", "login", "api", "dashboard", "mobile", "integrations"],
        weights=[20, 15, 15 + 10 * drift, 20, 15, 15 + 10 * drift],
    )[0]
    outage = int(rng.random() < 0.12)
    affected = min(5000, max(1, int(rng.lognormvariate(1.0 + 2.0 * outage, 1.2))))
    words = min(800, max(5, int(rng.lognormvariate(4.2, 0.7))))
    prior = min(50, int(rng.expovariate(1 / 2.5)))
    language = rng.choices(["english", "other"], weights=[75, 25])[0]
    urgency = (
        -0.4
        + 1.8 * outage
        + (0.45 + 0.25 * drift) * math.log(affected)
        + {"free": -0.7, "pro": 0.0, "enterprise": 0.9 - 0.5 * drift}[plan]
        + {"email": 0.0, "chat": 0.2, "phone": 0.6}[channel]
        + (0.5 if area in ("login", "api", "integrations") else 0.0)
        + 0.03 * prior
        - 0.0005 * words
        + rng.gauss(0.0, 0.3)
    )
    u = rng.random()
    # P(priority at most this level); the scale says how consistently the team triages
    below = [_sigmoid(TRIAGE_SCALE * (cut - urgency)) for cut in PRIORITY_CUTS]
    priority = PRIORITIES[sum(u > p for p in below)]
    return {
        "ticket_id": f"T{i:07d}",
        "plan": plan,
        "channel": channel,
        "product_area": area,
        "mentions_outage": outage,
        "affected_users": affected,
        "message_words": words,
        "prior_tickets_90d": "" if rng.random() < 0.03 else prior,
        "customer_language": language,
        "opened_at": _timestamp(rng, "2024-01-01", "2026-06-30"),
        "priority": priority,
    }


{% endif %}def generic_row_factory(contract: dict[str, Any], drift: float = 0.0) -> RowMaker:
    """Rows drawn from the contract's ranges; the target follows the numeric columns.

    With drift, numeric values move up their range and every other one reverses its effect.
    """
    columns: dict[str, dict[str, Any]] = contract["columns"]
    target, id_column = contract["target"], contract["id"]

    def make(rng: random.Random, i: int) -> Row:
        row: Row = {}
        signal = 0.0
        numeric = 0
        for name, spec in columns.items():
            if name in (target, id_column):
                continue
            if spec.get("values"):
                row[name] = rng.choice(spec["values"])
            elif spec["type"] == "datetime":
                row[name] = _timestamp(
                    rng, str(spec.get("min", "2020-01-01")), str(spec.get("max", "2025-12-31"))
                )
            elif spec["type"] == "boolean":
                row[name] = rng.random() < 0.5
            elif spec["type"] in ("integer", "float"):
                low, high = float(spec.get("min", 0)), float(spec.get("max", 100))
                u = rng.betavariate(2 + 2 * drift, 2)
                effect = 1.0 - 2.0 * drift * (numeric % 2)
                numeric += 1
                signal += 2.0 * effect * (u - 0.5)
                value = low + u * (high - low)
                row[name] = round(value) if spec["type"] == "integer" else round(value, 4)
            else:
                row[name] = f"{name}-{rng.randrange(1000)}"
        row[id_column] = f"R{i:07d}"
        row[target] = (
            contract.get("positive", 1) if rng.random() < _sigmoid(1.5 * signal - 1.0) else 0
        )
        return row

    return make


# The realistic generator of this project's sample data set, by contract name: only the
# chosen data set's generator ships (an `own` project has the generic one only).
BUILT_IN: dict[str, BuiltInRow] = {% if cookiecutter.__sample == "churn" %}{"churn": churn_row}{% elif cookiecutter.__sample == "credit-risk" %}{"credit-risk": credit_risk_row}{% elif cookiecutter.__sample == "insurance-cost" %}{"insurance-cost": insurance_cost_row}{% elif cookiecutter.__sample == "support-tickets" %}{"support-tickets": support_ticket_row}{% else %}{}{% endif %}


def row_factory(contract: dict[str, Any], drift: float = 0.0) -> RowMaker:
    """The realistic generator for the built-in data set, the generic one otherwise."""
    if not 0.0 <= drift <= 1.0:
        raise ValueError(f"drift {drift}: expected a number from 0 to 1")
    built_in = BUILT_IN.get(contract.get("name", ""))
    if built_in is None:
        return generic_row_factory(contract, drift)
    return lambda rng, i: built_in(rng, i, drift)


def generate(
    contract_path: Path, out: Path, rows: int, seed: int, drift: float = 0.0, first_id: int = 0
) -> Path:
    """Write `rows` rows for the contract to `out` (CSV), atomically; ids start at `first_id`."""
    contract = yaml.safe_load(contract_path.read_text(encoding="utf-8"))
    make = row_factory(contract, drift)
    rng = random.Random(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Not artifacts.atomic_path: the hook runs this file as a script before any venv exists,
    # where the package (and pandas) cannot be imported.
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(contract["columns"]))
        writer.writeheader()
        for i in range(first_id, first_id + rows):
            writer.writerow(make(rng, i))
    os.replace(tmp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: write a sample data set for the contract."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contract", type=Path, default=Path("contract.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--rows", type=int, help="default: params.yaml data.sample_rows")
    parser.add_argument("--seed", type=int, help="default: params.yaml data.seed")
    parser.add_argument(
        "--drift", type=float, default=0.0, help="0 to 1: how far population and concept moved"
    )
    parser.add_argument("--first-id", type=int, default=0, help="number of the first row's id")
    args = parser.parse_args(argv)
    settings = (
        yaml.safe_load(args.params.read_text(encoding="utf-8"))["data"]
        if args.params.is_file()
        else {}
    )
    args.rows = args.rows if args.rows is not None else int(settings.get("sample_rows", 8000))
    args.seed = args.seed if args.seed is not None else int(settings.get("seed", 0))
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    if not 0.0 <= args.drift <= 1.0:
        parser.error("--drift must be from 0 to 1")
    if args.first_id < 0:
        parser.error("--first-id must be at least 0")
    path = generate(args.contract, args.out, args.rows, args.seed, args.drift, args.first_id)
    print(f"wrote {args.rows} rows to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
