"""The simulator: traces, reproducible reports, the CLI, and I1-I6 under random faults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steadyscale.app.cli import main
from steadyscale.app.runtime import assemble_simulation
from steadyscale.core.instances import TAG_REQUEST
from steadyscale.core.lifecycle import HAS_INSTANCE, Status
from steadyscale.core.prices import on_demand_price
from steadyscale.errors import ConfigError
from steadyscale.sim import Simulation, builtin_trace, load_trace, resolve_trace
from steadyscale.testing.audit import audit
from tests.cluster import cluster_config, make_memory_cluster

CONFIG = """
cluster_name: sim
max_workers: 30
idle_timeout_minutes: 1
provider:
  type: memory
  emulator: {profile: realistic}
available_node_types:
  cpu:
    node_config: {InstanceType: m5.large, ImageId: ami-12345678}
    resources: {CPU: 2}
    max_workers: 30
"""


def _simulate(trace: str = "burst", seed: int = 3, **kwargs: Any) -> dict[str, Any]:
    config = cluster_config(
        max_workers=30, provider={"type": "memory", "emulator": {"profile": "realistic"}}
    )
    sim = Simulation(
        config,
        resolve_trace(trace, config, peak=30, duration=900, seed=seed),
        seed=seed,
        duration=900,
        assemble=assemble_simulation,
        **kwargs,
    )
    try:
        return sim.run().report.model_dump()
    finally:
        sim.close()


def test_the_same_trace_and_seed_give_the_same_report() -> None:
    first = _simulate(seed=3)
    assert first == _simulate(seed=3)
    assert first["peak_running"] == 30 and first["duplicates"] == 0 and first["leaks"] == 0
    assert first["time_to_capacity_seconds"] is not None
    assert first["api_calls_by_action"]["RunInstances"] >= 1
    # The seed matters: another draws other delays, so another time to capacity or calls.
    other = _simulate(seed=4)
    assert (other["capacity_after_each_rise"], other["api_calls_by_outcome"]) != (
        first["capacity_after_each_rise"],
        first["api_calls_by_outcome"],
    )


def test_cost_is_computed_with_prices_and_said_absent_without() -> None:
    priced = _simulate(prices={"m5.large": 0.1})
    hours = priced["node_hours_by_instance_type"]["m5.large"]
    assert hours > 0
    assert priced["cost"]["total"] == pytest.approx(hours * 0.1, rel=1e-3)
    assert "no prices" in _simulate()["cost"]["note"]


def test_builtin_traces_rise_to_the_peak_and_fall_back() -> None:
    bundle = {"CPU": 2.0}
    burst = builtin_trace("burst", peak=10, duration=600, bundle=bundle, seed=0)
    assert [s.bundles for s in burst.steps] == [10, 0]
    diurnal = builtin_trace("diurnal", peak=100, duration=2400, bundle=bundle, seed=0)
    levels = [s.bundles for s in diurnal.steps]
    assert levels[0] == 0 and max(levels) == 100 == levels[12]
    spiky = builtin_trace("spiky", peak=50, duration=3600, bundle=bundle, seed=1)
    assert {s.bundles for s in spiky.steps} == {5, 50}


def test_trace_files_in_csv_and_yaml_give_the_same_steps(tmp_path: Path) -> None:
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("time,bundle,count\n0,CPU=2,4\n0,CPU=4;GPU=1,1\n300,CPU=2,0\n")
    yaml_file = tmp_path / "t.yaml"
    yaml_file.write_text(
        "- {time: 0, bundle: {CPU: 2}, count: 4}\n"
        "- {time: 0, bundle: {CPU: 4, GPU: 1}, count: 1}\n"
        "- {time: 300, bundle: {CPU: 2}, count: 0}\n"
    )
    from_csv, from_yaml = load_trace(csv_file), load_trace(yaml_file)
    assert from_csv.steps == from_yaml.steps
    assert [s.bundles for s in from_csv.steps] == [5, 0]


def test_a_bad_trace_row_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("time,bundle,count\n0,CPU=2,4\n10,CPU,3\n")
    with pytest.raises(ConfigError, match=r"bad.csv:3: bundle 'CPU'"):
        load_trace(bad)


def test_simulate_cli_writes_the_report_and_the_plot_for_the_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = Path(__file__).resolve().parents[2] / "examples" / "simulate.yaml"
    out = tmp_path / "out"
    assert (
        main(
            [
                "simulate",
                "--config",
                str(config),
                "--trace",
                "burst",
                "--duration",
                "10m",
                "--peak",
                "10",
                "--price",
                "m5.large=0.096",
                "--report-dir",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "report.json").read_text())
    assert printed["peak_running"] == 10 and printed["cost"]["total"] > 0
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--duration", "soon"], "--duration 'soon'"),
        (["--trace", "sawtooth"], "--trace 'sawtooth'"),
        (["--price", "m5.large"], "--price 'm5.large'"),
    ],
)
def test_simulate_cli_bad_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    argv = [
        "simulate",
        "--config",
        str(config),
        "--trace",
        "burst",
        "--report-dir",
        str(tmp_path / "out"),
        *args,
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- invariants under faults

faults = st.fixed_dictionaries(
    {
        "visibility": st.sampled_from(
            [{"median": 2, "p99": 30, "max": 120}, {"median": 20, "p99": 90, "max": 200}]
        ),
        "stale_reads": st.fixed_dictionaries(
            {
                "probability": st.sampled_from([0.0, 0.3]),
                "window": st.just({"median": 5, "p99": 30, "max": 60}),
                "listing_flicker_probability": st.sampled_from([0.0, 0.05, 0.3]),
            }
        ),
        "throttling": st.fixed_dictionaries(
            {"enabled": st.booleans(), "scale": st.sampled_from([0.2, 1.0])}
        ),
        "capacity": st.fixed_dictionaries({"shortage_probability": st.sampled_from([0.0, 0.2])}),
        "errors": st.fixed_dictionaries(
            {
                "server_error_probability": st.sampled_from([0.0, 0.05]),
                "lost_response_probability": st.sampled_from([0.0, 0.05]),
                "timeout_probability": st.sampled_from([0.0, 0.02]),
                "timeout_seconds": st.just(3),
            }
        ),
        "seed": st.integers(0, 1000),
    }
)


# A fleet node type: CreateFleet across three types and two subnets, from a launch template.
FLEET_TYPES = {
    "cpu": {
        "node_config": {"ImageId": "ami-12345678"},
        "resources": {"CPU": 2},
        "max_workers": 500,
        "market": "spot",
        "instance_types": ["m5.large", "c5.large", "r5.large"],
    }
}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(faults=faults, nodes=st.integers(1, 12), fleet=st.booleans())
def test_invariants_hold_on_the_memory_backend_under_random_fault_schedules(
    faults: dict[str, Any], nodes: int, fleet: bool
) -> None:
    fleet_config: dict[str, Any] = {
        "available_node_types": FLEET_TYPES,
        "provider": {"type": "memory", "subnets": ["subnet-a", "subnet-b"]},
    }
    cluster = make_memory_cluster(
        "none",
        emulator=faults,
        quiet_errors=False,
        idle_timeout_minutes=0,
        **(fleet_config if fleet else {}),
    )
    seen: set[str] = set()

    def check(c: Any) -> None:
        # I3 no loss: every id RunInstances (or CreateFleet) returned is in the ledger,
        # tracked while EC2 runs it; an id whose answer was lost belongs to a request still
        # open (resent with its ClientToken, or adopted by its request-id tag).
        records = {r.instance_id: r for r in c.ledger.nodes(include_terminal=True) if r.instance_id}
        open_requests = {r.request_id for r in c.ledger.requests(open_only=True)}
        for inst in c.truth():
            seen.add(inst.instance_id)
            if inst.instance_id not in records:
                assert inst.tags[TAG_REQUEST] in open_requests
            elif inst.state.value not in ("terminated", "shutting-down"):
                assert records[inst.instance_id].status in HAS_INSTANCE
        # I6 invisible is not gone: nothing LOST before the visibility timeout, counted
        # from its launch if EC2 never showed it, else from the first listing it missed.
        for record in c.autoscaler.records.values():
            if record.status is Status.LOST:
                lost_at = next(h.at for h in reversed(record.history) if h.status is Status.LOST)
                since = (
                    record.missing_since if record.missing_since is not None else record.launched_at
                )
                assert since is not None
                assert lost_at - since > c.config.visibility_timeout_seconds

    cluster.demand(nodes)
    # I5 converges (and I4: every tick ends, none past its bound, no exception escapes).
    cluster.run(
        lambda r: r.settled and cluster.count(Status.READY) == nodes, max_ticks=400, each=check
    )
    # I1 no duplicate: nothing beyond what a request asked for, nothing unrecorded.
    over, unrecorded = audit(
        cluster.ledger, [(i.instance_id, i.tags[TAG_REQUEST]) for i in cluster.truth()]
    )
    assert over == 0 and unrecorded == []
    cluster.demand(0)
    cluster.run(lambda r: r.settled and not cluster.alive(), max_ticks=400, each=check)
    # I2 no leak after scale to zero.
    assert cluster.alive() == []
    assert all(r.duration <= cluster.config.max_tick_seconds for r in cluster.reports)
    unexpected = [
        e
        for r in cluster.reports
        for e in r.errors
        if not e.startswith(("listing:", "lookup", "launch ", "terminate:", "gc terminate:"))
    ]
    assert unexpected == []
    assert seen == {i.instance_id for i in cluster.truth()}


def test_a_memory_config_validates_and_a_negative_price_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    assert main(["validate", str(config)]) == 0
    assert "provider memory" in capsys.readouterr().out
    config.write_text(CONFIG + "prices: {m5.large: -1}\n")
    assert main(["validate", str(config)]) == 2
    assert "prices" in capsys.readouterr().err


def test_run_on_the_memory_backend_checks_its_ground_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        CONFIG.replace("{profile: realistic}", "{profile: none, time_scale: 0.001}")
        + "scenario:\n  - {at_seconds: 0, demand: [{bundle: {CPU: 2}, count: 3}]}\n"
        "  - {at_seconds: 60, demand: []}\n"
    )
    assert main(["run", str(config), "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["nodes_launched"] == 3
    assert summary["duplicates"] == 0 and summary["leaks"] == 0


def _simulate_file(
    tmp_path: Path, rows: str, duration: float, profile: str = "none", before: Any = None
) -> dict[str, Any]:
    trace = tmp_path / "trace.csv"
    trace.write_text("time,bundle,count\n" + rows)
    config = cluster_config(
        max_workers=60, provider={"type": "memory", "emulator": {"profile": profile}}
    )
    sim = Simulation(
        config,
        load_trace(trace),
        seed=1,
        duration=duration,
        assemble=assemble_simulation,
        profile=profile,
    )
    try:
        if before is not None:
            before(sim)
        return sim.run().report.model_dump()
    finally:
        sim.close()


def test_time_to_capacity_ends_with_the_tick_that_met_it(tmp_path: Path) -> None:
    # No delays: the first tick launches, the next sees them all ready.
    report = _simulate_file(tmp_path, "0,CPU=2,5\n", duration=60)
    assert report["capacity_after_each_rise"] == [{"at_seconds": 0.0, "demand": 5, "seconds": 5.0}]


def test_a_spike_the_demand_fell_back_from_was_never_met(tmp_path: Path) -> None:
    report = _simulate_file(
        tmp_path, "0,CPU=2,5\n300,CPU=2,50\n305,CPU=2,5\n", duration=600, profile="realistic"
    )
    rises = report["capacity_after_each_rise"]
    assert [r["demand"] for r in rises] == [5, 50]
    assert rises[0]["seconds"] is not None and rises[1]["seconds"] is None


def test_lost_launch_answers_are_awaiting_adoption_not_duplicates(tmp_path: Path) -> None:
    def lose_answers(sim: Simulation) -> None:
        sim.provider.inject("lost_response", "RunInstances", 3)

    # Stopped while the launch's answer is lost: the instances belong to an open request.
    early = _simulate_file(tmp_path, "0,CPU=2,3\n", duration=1, before=lose_answers)
    assert early["instances_launched"] == 3
    assert (early["duplicates"], early["leaks"], early["awaiting_adoption"]) == (0, 0, 3)
    late = _simulate_file(tmp_path, "0,CPU=2,3\n", duration=300, before=lose_answers)
    assert (late["duplicates"], late["leaks"], late["awaiting_adoption"]) == (0, 0, 0)
    assert late["instances_launched"] == 3


def test_node_hours_count_from_running_not_from_launch(tmp_path: Path) -> None:
    config = cluster_config(
        max_workers=10, provider={"type": "memory", "emulator": {"profile": "realistic"}}
    )
    trace = tmp_path / "trace.csv"
    trace.write_text("time,bundle,count\n0,CPU=2,4\n600,CPU=2,0\n")
    sim = Simulation(config, load_trace(trace), seed=1, duration=1200, assemble=assemble_simulation)
    try:
        report = sim.run().report.model_dump()
        spans = [
            (i.launched_at, i.running_at, i.terminate_requested_at) for i in sim.provider.truth()
        ]
        billed = (
            sum(stop - up for _, up, stop in spans if up is not None and stop is not None) / 3600
        )
        booting = sum(up - launched for launched, up, _ in spans if up is not None) / 3600
    finally:
        sim.close()
    assert len(spans) == 4 and booting > 0  # realistic instances take time to boot
    # EC2 bills from running until shutting-down: the boot before it is not counted.
    assert report["node_hours_total"] == pytest.approx(billed, abs=1e-3)


def test_simulate_refuses_a_trace_that_is_not_text_and_absurd_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    binary = tmp_path / "t.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    huge = tmp_path / "t.yaml"
    huge.write_text("- {time: 0, bundle: {CPU: 2}, count: 99999999999999999999}\n")
    blocker = tmp_path / "file"
    blocker.write_text("")
    for args, words in (
        (["--trace", str(binary)], "not UTF-8"),
        (["--trace", str(huge)], "count"),
        (["--trace", "burst", "--peak", "99999999999999999999"], "--peak"),
        (["--trace", "burst", "--report-dir", str(blocker / "sub")], "--report-dir"),
    ):
        code = main(["simulate", "--config", str(config), "--quiet", *args])
        err = capsys.readouterr().err
        assert code == 2 and words in err and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err


def test_the_report_prices_each_node_hour_at_its_pool_price_as_status_does() -> None:
    report = _simulate()
    hours = report["node_hours_by_instance_type"]["m5.large"]
    at_pool = report["cost_at_pool_prices"]
    assert at_pool["total"] == pytest.approx(hours * (on_demand_price("m5.large") or 0), rel=1e-3)
    assert at_pool["unpriced_instance_types"] == []
