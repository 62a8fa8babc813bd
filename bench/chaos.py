"""Chaos at scale: the scenario of tests/chaos (sandbox/chaos.py) at 1,000 orders, once without
faults (the baseline) and once with them, on fresh gateways in the same run.

    .venv/bin/python bench/chaos.py [--orders 1000] [--workers 3] [--worker-kills 4] \
        [--redis-restarts 1] [--pace 8] [--submitters 8] [--redis-down 2] [--settle 300] \
        [--no-baseline]

Each order has two lines: line 1 is posted by two threads at once without a key (one 201, one
422), line 2 twice with one Idempotency-Key; `--pace` orders a second start being fulfilled.
The faults are spread over that submission window: the worker holding RQ's scheduler lock
SIGKILLed first, then workers caught delivering, with `--redis-restarts` kill -9 and restart of
Redis (AOF, everysec) in the middle; each killed worker is replaced at once. The buyer's
callback receiver refuses the first try of one event in ten. Prints, for each run: orders,
fulfillments, faults, lost / duplicated / over-fulfilled, the latency from a fulfillment's 201
to its `fulfillment.created` at the buyer (p50/p90/p99/max), the time from the last fault to
the last delivery, and the ratios chaos/baseline. Bounded: `--settle` seconds past the last
fault at most, then what is missing counts as lost.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project root
from sandbox.chaos import Outcome, Plan, run


def report(name: str, outcome: Outcome) -> dict[str, float]:
    """Print one run's figures; its percentiles."""
    figures = {f"p{q}": outcome.percentile(q) for q in (50, 90, 99)}
    figures["max"] = max(outcome.latencies, default=float("nan"))
    print(f"\n== {name} (took {outcome.took:.0f} s; logs in {outcome.folder})")
    print(
        f"orders {outcome.orders}, fulfillments {outcome.fulfillments}, "
        f"API answers {dict(sorted(outcome.answers.items()))}"
    )
    print(f"faults injected: {len(outcome.faults)}")
    for fault in outcome.faults:
        extra = f", running {fault.job or 'nothing'}" if fault.worker else ""
        takeover = (
            f"; scheduler lock taken over after {fault.takeover:.1f} s" if fault.takeover else ""
        )
        print(f"  {fault.kind} {fault.worker}{extra}{takeover}")
    print(
        f"lost {outcome.lost}, duplicated {outcome.duplicated}, "
        f"over-fulfilled {outcome.over_fulfilled}; redelivered after a fault (same event id) "
        f"{outcome.redelivered_after_fault}; events retried after the receiver's refusal "
        f"{outcome.retried_after_refusal}"
    )
    print("fulfillment -> buyer: " + "  ".join(f"{k} {v:.2f} s" for k, v in figures.items()))
    print(f"first submission -> last delivery: {outcome.span:.1f} s")
    if outcome.last_fault_to_last_delivery is not None:
        print(f"last fault -> last delivery: {outcome.last_fault_to_last_delivery:.1f} s")
    for problem in outcome.problems[:20]:
        print(f"  problem: {problem}")
    if len(outcome.problems) > 20:
        print(f"  ... and {len(outcome.problems) - 20} more")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=3, help="RQ worker processes")
    parser.add_argument("--worker-kills", type=int, default=4, help="SIGKILLed workers")
    parser.add_argument("--redis-restarts", type=int, default=1, help="kill -9 and restart")
    parser.add_argument("--pace", type=float, default=8.0, help="orders fulfilled a second")
    parser.add_argument("--submitters", type=int, default=8, help="orders in flight at once")
    parser.add_argument("--redis-down", type=float, default=2.0, help="seconds Redis is down")
    parser.add_argument("--settle", type=float, default=300.0, help="seconds past the last fault")
    parser.add_argument("--no-baseline", action="store_true", help="only the run with faults")
    args = parser.parse_args()

    def plan(faults: bool) -> Plan:
        return Plan(
            orders=args.orders,
            workers=args.workers,
            worker_kills=args.worker_kills,
            redis_restarts=args.redis_restarts,
            pace=args.pace,
            submitters=args.submitters,
            redis_down=args.redis_down,
            settle=args.settle,
            faults=faults,
        )

    quiet = lambda line: print(f"  {line}", flush=True)  # noqa: E731
    baseline, baseline_span = None, 0.0
    if not args.no_baseline:
        print("baseline: the same load, no faults", flush=True)
        quiet_run = run(plan(False), quiet)
        baseline, baseline_span = report("baseline (no faults)", quiet_run), quiet_run.span
    print("\nchaos: the same load with faults", flush=True)
    chaos = run(plan(True), quiet)
    figures = report("with faults", chaos)
    if baseline:
        print(
            "\nratio chaos/baseline: "
            + "  ".join(f"{k} {figures[k] / baseline[k]:.1f}" for k in figures)
            + f"  first submission -> last delivery {chaos.span / baseline_span:.2f}"
        )
    sys.exit(1 if chaos.problems else 0)


if __name__ == "__main__":
    main()
