"""Console: the reconciliation's last cycles, and a cycle run now."""

from __future__ import annotations

from flask import flash, redirect, render_template

from gateway.console import admin
from gateway.jobs.reconcile import reconcile_locks, run_now
from gateway.runtime import store


@admin.get("/reconcile")
def reconcile_page():
    """The last 20 cycles, scheduled and manual alike: when, duration, calls, orders changed,
    lag; whether one runs now."""
    current = store()
    running = any(current.lock_held(name) for name in reconcile_locks(current))
    return render_template("console_reconcile.html", cycles=current.cycles(), running=running)


@admin.post("/reconcile")
def reconcile_now():
    """Run one cycle now, as the schedule would (same lock: a cycle running makes it a no-op)."""
    job = run_now(store())
    if job is None:
        flash("A cycle is running already: nothing was started.", "error")
    else:
        flash("A cycle was queued; it shows here once a worker starts it.", "ok")
    return redirect("/admin/reconcile", code=303)
