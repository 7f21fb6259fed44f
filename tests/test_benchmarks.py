"""The benchmarks still run and report the fields they promise (tiny sizes here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_emulator_benchmark_reports_both_sides_and_the_ratio() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "emulator.py"), "--instances", "20",
         "--per-call", "10", "--rounds", "1", "--json"],
        check=True, capture_output=True, text=True, timeout=300,
    )
    report = json.loads(result.stdout)
    assert report["listed"] == {"moto": 20, "layer": 20}
    assert set(report["overhead_ratio"]) == {"run_instances", "describe_instances", "total"}
    assert report["overhead_ratio"]["total"] > 0
    assert report["run_instances_calls_per_s"]["layer"] > 0


def test_scale_up_benchmark_reports_its_figures() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scale_up.py"), "--nodes", "20",
         "--time-scale", "0.05", "--json"],
        check=True, capture_output=True, text=True, timeout=300,
    )
    report = json.loads(result.stdout)
    assert report["confirmed_running"] == 20
    assert report["duplicates"] == 0 and report["leaks"] == 0
    assert report["lower_bound_s"] > 0 and report["ratio"] >= 1.0
    assert report["api_calls_scale_up"]["RunInstances"] >= 1
    assert report["largest_tick_s"] >= 0


def test_capacity_benchmark_reports_its_figures() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "capacity.py"), "--nodes", "30",
         "--time-scale", "0.05", "--json"],
        check=True, capture_output=True, text=True, timeout=300,
    )
    report = json.loads(result.stdout)
    assert report["confirmed_running"] == 30
    assert set(report["instances_by_zone"]).isdisjoint(report["pools_without_capacity"])
    assert report["bucket_limited_lower_bound_s"] > 0
    assert report["nodes_per_run_instances"] >= 1
    assert report["duplicates"] == 0


def test_crash_benchmark_reports_both_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "crash.py"), "--nodes", "20",
         "--kills", "4", "--json"],
        check=True, capture_output=True, text=True, timeout=600,
    )
    report = json.loads(result.stdout)
    assert report["without_kills"]["kills"] == 0 and report["with_kills"]["kills"] == 4
    assert report["duplicates"] == 0 and report["leaks"] == 0
    assert "extra_seconds_to_converge" in report
