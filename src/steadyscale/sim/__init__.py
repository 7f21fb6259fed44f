"""``steadyscale simulate``: the real autoscaler against the in-memory EC2 model on a
virtual clock, driven by a demand trace, summed up in a report."""

from steadyscale.sim.plot import plot
from steadyscale.sim.report import (
    CapacityRise,
    PricedCost,
    Sample,
    SimulationReport,
    SimulationResult,
    UnpricedCost,
    write_report,
)
from steadyscale.sim.simulation import (
    Assemble,
    Assembly,
    ModelProvider,
    Simulation,
    fewer_collections,
)
from steadyscale.sim.traces import (
    BUILTIN_TRACES,
    Trace,
    TraceStep,
    builtin_trace,
    load_trace,
    parse_duration,
    resolve_trace,
)

__all__ = [
    "BUILTIN_TRACES",
    "Assemble",
    "Assembly",
    "CapacityRise",
    "ModelProvider",
    "PricedCost",
    "Sample",
    "Simulation",
    "SimulationReport",
    "SimulationResult",
    "Trace",
    "TraceStep",
    "UnpricedCost",
    "builtin_trace",
    "fewer_collections",
    "load_trace",
    "parse_duration",
    "plot",
    "resolve_trace",
    "write_report",
]
