"""What a config change does to live nodes, in words: ``validate`` says it before the
daemon acts, ``status`` while nodes retire. The plan itself is ``core.changes``'."""

from __future__ import annotations

from steadyscale.core.changes import ChangePlan, Fate, resolve_surge


def describe_plan(plan: ChangePlan, max_surge: int | str) -> list[str]:
    """One line per group of nodes that share a fate, then how retiring nodes go."""
    lines: list[str] = []
    for fate, count in plan.groups():
        if fate.fate is Fate.KEPT:
            lines.append(f"kept         {count} x {fate.node_type}")
        elif fate.fate is Fate.RELABELLED:
            lines.append(
                f"re-labelled  {count} x {fate.node_type} -> {fate.new_type} (same node_config "
                "and resources: not replaced)"
            )
        else:
            lines.append(f"retiring     {count} x {fate.new_type}: {fate.reason}")
    retiring = plan.counts()[Fate.RETIRING]
    if retiring:
        surge = resolve_surge(max_surge, retiring)
        lines.append(
            "a retiring node takes no new demand and is terminated once ready nodes of a "
            f"configured type hold its demand; at most {surge} replacement(s) start at once "
            f"(max_surge {max_surge})"
        )
    if not plan.had_snapshot and plan.fates:
        lines.append(
            "this ledger does not say which node types it last ran with (it predates "
            "steadyscale keeping them): no rename is recognised, so nodes of node types the "
            "config does not have retire"
        )
    return lines
