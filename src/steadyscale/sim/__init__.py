"""``steadyscale simulate``: the real autoscaler against the in-memory EC2 model on a
virtual clock, driven by a demand trace, summed up in a report."""

from steadyscale.sim.simulation import (
    BUILTIN_TRACES,
    Sample,
    Simulation,
    SimulationResult,
    Trace,
    TraceStep,
    builtin_trace,
    fewer_collections,
    load_trace,
    parse_duration,
    plot,
    resolve_trace,
    write_report,
)

__all__ = [
    "BUILTIN_TRACES",
    "Sample",
    "Simulation",
    "SimulationResult",
    "Trace",
    "TraceStep",
    "builtin_trace",
    "fewer_collections",
    "load_trace",
    "parse_duration",
    "plot",
    "resolve_trace",
    "write_report",
]
