"""Issue 5's measure: one cycle over 10,000 unshipped orders in 10 shops with 1% changed makes at
most about 2 x (changed / page size + connections) API calls (counted by the simulator)."""

from __future__ import annotations

import argparse
import importlib.util

from conftest import ROOT


def test_a_cycle_costs_what_changed_not_the_backlog(redis):
    spec = importlib.util.spec_from_file_location(
        "reconcile_cost", ROOT / "bench/reconcile_cost.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    figures = bench.run(argparse.Namespace(stores=10, orders=1000, changed=0.01, runs=2))
    assert figures["unshipped"] == 10_000
    assert figures["median_calls"] <= figures["bound"]
