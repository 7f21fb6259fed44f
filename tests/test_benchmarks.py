"""The benchmarks still run and report the fields they promise (tiny sizes here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _report(name: str, *args: str, timeout: int) -> Any:
    """Run ``benchmarks/<name>.py ARGS --json`` and return the JSON it prints."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args, "--json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return json.loads(result.stdout)


def test_emulator_benchmark_reports_both_sides_and_the_ratio() -> None:
    report = _report(
        "emulator", "--instances", "20", "--per-call", "10", "--rounds", "1", timeout=300
    )
    assert report["listed"] == {"moto": 20, "layer": 20}
    assert set(report["overhead_ratio"]) == {"run_instances", "describe_instances", "total"}
    assert report["overhead_ratio"]["total"] > 0
    assert report["run_instances_calls_per_s"]["layer"] > 0


def test_scale_up_benchmark_reports_its_figures() -> None:
    report = _report("scale_up", "--nodes", "20", "--time-scale", "0.05", timeout=300)
    assert report["confirmed_running"] == 20
    assert report["duplicates"] == 0 and report["leaks"] == 0
    assert report["lower_bound_s"] > 0 and report["ratio"] >= 1.0
    assert report["api_calls_scale_up"]["RunInstances"] >= 1
    assert report["largest_tick_s"] >= 0


def test_capacity_benchmark_reports_its_figures() -> None:
    report = _report("capacity", "--nodes", "30", "--time-scale", "0.05", timeout=300)
    assert report["confirmed_running"] == 30
    assert set(report["instances_by_zone"]).isdisjoint(report["pools_without_capacity"])
    assert report["bucket_limited_lower_bound_s"] > 0
    assert report["nodes_per_run_instances"] >= 1
    assert report["duplicates"] == 0


def test_crash_benchmark_reports_both_runs() -> None:
    report = _report("crash", "--nodes", "20", "--kills", "4", timeout=600)
    assert report["without_kills"]["kills"] == 0 and report["with_kills"]["kills"] == 4
    assert report["duplicates"] == 0 and report["leaks"] == 0
    assert "extra_seconds_to_converge" in report


def test_ray_compare_benchmark_reports_both_providers() -> None:
    report = _report("ray_compare", "--workers", "10", "--time-scale", "0.05", timeout=300)
    for side in ("ray", "steadyscale"):
        assert report[side]["target"] == 10
        assert report[side]["seconds_to_target"] is not None
        assert report[side]["api_calls"]["RunInstances"] >= 1
        assert report[side]["leaks"] >= 0 and report[side]["duplicates"] >= 0
    assert report["steadyscale"]["duplicates"] == 0 and report["steadyscale"]["leaks"] == 0
    assert report["steadyscale"]["update_errors"] == 0
    assert report["ratio_instances_launched"] is not None
    assert report["fresh_node_failures"]["steadyscale"] == 0
    assert set(report["fresh_node"]["ray"]) == set(report["fresh_node"]["steadyscale"])


def test_simulate_benchmark_reports_its_figures() -> None:
    report = _report(
        "simulate", "--nodes", "30", "--duration", "600", "--repeats", "2", timeout=300
    )
    assert set(report["traces"]) == {"burst", "diurnal"}
    burst = report["traces"]["burst"]
    assert burst["peak_running"] == 30 and burst["ticks"] == 120
    assert burst["duplicates"] == 0 and burst["leaks"] == 0
    assert report["running_at_measure"] == 30
    assert report["decide_ms"]["median"] > 0 and report["tick_ms"]["median"] > 0
    assert report["peak_rss_mb"] > 0
    ray = report["ray"]
    assert ("update_ms" in ray) == (report["ray_update_over_our_tick"] is not None)
    assert "update_ms" in ray or "ray is not installed" in ray["skipped"]


def test_failover_benchmark_reports_takeovers_and_ground_truth() -> None:
    report = _report("failover", "--nodes", "20", "--kills", "2", timeout=600)
    assert len(report["takeover_s"]) == 2 and len(report["kill_moments_s"]) == 2
    assert report["takeover_bound_s"] == 3.5
    assert 0 < report["takeover_median_s"] <= report["takeover_max_s"]
    assert report["undisturbed"]["kills"] == 0 and report["with_kills"]["kills"] == 2
    assert report["undisturbed"]["capacity_seconds"] > 0
    assert isinstance(report["capacity_seconds_lost"], float)
    assert report["duplicates"] == 0 and report["leaks"] == 0 and report["overlaps"] == 0
    assert report["hurried_handovers"] == 0
    assert report["with_kills"]["replicas_acted"] >= 2


def test_ledger_backends_benchmark_reports_both_and_the_ratio() -> None:
    report = _report("ledger_backends", "--nodes", "50", "--rounds", "2", timeout=300)
    assert set(report["tick_write_ms"]) == {"sqlite", "postgres"}
    assert report["tick_write_ms"]["sqlite"] > 0 and report["tick_write_ms"]["postgres"] > 0
    assert report["postgres_over_sqlite"] > 0 and report["pipeline_speedup"] > 0


def test_fleet_benchmark_reports_both_paths() -> None:
    report = _report("fleet", "--nodes", "40", timeout=120)
    for name in ("fleet", "single_type"):
        figures = report[name]
        assert {"ratio", "api_calls_per_node", "cost_over_cheapest", "duplicates", "leaks"} <= set(
            figures
        )
        assert figures["ready"] == 40 and figures["duplicates"] == figures["leaks"] == 0
    # The fleet reaches the cheapest feasible allocation; one type falls back to on-demand.
    assert report["fleet"]["cost_over_cheapest"] <= 1.05
    assert report["single_type"]["cost_over_cheapest"] > report["fleet"]["cost_over_cheapest"]


def test_api_benchmark_reports_its_figures() -> None:
    report = _report(
        "api", "--nodes", "20", "--minutes", "1", "--baseline-minutes", "0.5", timeout=300
    )
    assert set(report) == {
        "api_p50_ms",
        "api_p99_ms",
        "tick_ratio",
        "busy_terminated",
        "duplicates",
        "leaks",
    }
    assert report["api_p50_ms"] > 0 and report["api_p99_ms"] >= report["api_p50_ms"]
    assert report["tick_ratio"] > 0
    assert report["busy_terminated"] == 0
    assert report["duplicates"] == 0 and report["leaks"] == 0
