"""The seed's five worked examples through `facecloud billing quote` / `plan`; the operator commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facecloud.cli import app

runner = CliRunner()


def _json(*args: str) -> object:
    result = runner.invoke(app, ["billing", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize(
    ("args", "total"),
    [
        (["--service", "search", "--calls", "52000000", "--packs", "50M"], "148868.00"),
        (["--service", "landmarks", "--calls", "1000000"], "1980.00"),
        (["--service", "compare", "--calls", "3500000"], "10470.00"),
        (["--service", "liveness", "--calls", "5000000"], "8483.00"),
    ],
)
def test_quote_reproduces_the_seed_examples(args: list[str], total: str) -> None:
    quote = _json("quote", *args)
    assert quote["total"] == total
    assert {
        "service",
        "calls",
        "free_calls",
        "pack_calls",
        "postpaid_calls",
        "tier",
        "unit_price",
        "postpaid_amount",
        "packs_price",
        "total",
    } <= set(quote)


def test_plan_reproduces_the_seed_yearly_example() -> None:
    plan = _json("plan", "--service", "compare", "--calls-per-year", "30000000")
    assert plan["best"]["packs"] == {"10000000": 3} and plan["best"]["total"] == "91200.00"
    assert plan["compared"] == 160 and len(plan["alternatives"]) >= 2


def test_quote_refuses_an_unknown_pack_size() -> None:
    result = runner.invoke(app, ["billing", "quote", "--service", "compare", "--calls", "1", "--packs", "2M"])
    assert result.exit_code == 1 and "sells no pack" in result.output


def test_operator_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in __import__("os").environ if k.startswith("FACECLOUD_")]:
        monkeypatch.delenv(name)
    data = ["--data-dir", str(tmp_path)]
    created = json.loads(runner.invoke(app, ["accounts", "create", "--name", "shop", *data]).output)
    ref = str(created["AppId"])
    assert _json("topup", ref, "--amount", "5000", *data)["balance"] == "5000.00"
    packs = _json("packs", "buy", ref, "--service", "detect", "--size", "1M", "--count", "2", *data)
    assert [p["remaining"] for p in packs] == [1_000_000, 1_000_000]
    assert _json("wallet", ref, *data)["balance"] == "4100.00"
    bills = _json("settle", "--month", "2026-01", *data)
    assert [(b["month"], b["total"]) for b in bills] == [("2026-01", "0.00")]
    assert _json("settle", "--month", "2026-01", *data) == []  # idempotent
    assert [b["month"] for b in _json("bill", "show", ref, *data)] == ["2026-01"]
    assert len(_json("packs", "list", created["SecretId"], *data)) == 2
