"""The Ray provider's terminations, journaled: idempotent, and what EC2 has not accepted yet
(a fresh id it does not know, throttling) stays in the state file and is sent again at each
update, since the instance would otherwise run and be billed. With ``cache_stopped_nodes``
on-demand nodes are stopped instead; spot nodes and nodes of unknown lifecycle terminated.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from steadyscale.errors import LaunchRejected
from steadyscale.ray.book import Node
from steadyscale.ray.journal import PendingTermination
from steadyscale.ray.shared import Shared
from steadyscale.ray.unanswered import UNANSWERED

log = logging.getLogger("steadyscale.ray")

TERMINATE = "TerminateInstances"
STOP = "StopInstances"


class Terminator:
    """``terminate_nodes``, and the terminations EC2 has not accepted yet, retried."""

    def __init__(
        self,
        shared: Shared,
    ) -> None:
        self._shared = shared

    def terminate(self, node_ids: list[str]) -> None:
        if not node_ids:
            return
        now = self._shared.clock.now()
        actions: dict[str, list[str]] = {TERMINATE: [], STOP: []}
        took = self._shared.book.take(node_ids)
        for node_id, node in took.items():
            # Stop only what is known to be on-demand: stopping a spot instance fails.
            stop = (
                self._shared.settings.cache_stopped_nodes
                and node is not None
                and node.lifecycle == "on-demand"
            )
            actions[STOP if stop else TERMINATE].append(node_id)
        everything = [i for ids in actions.values() for i in ids]
        self._shared.state.forget_launches(everything)
        self._shared.state.add_terminations(
            [
                PendingTermination(instance_id=i, action=a, since=now)
                for a, ids in actions.items()
                for i in ids
            ]
        )
        self._send(actions, {i: node for i, node in took.items() if node is not None})

    def retry(self) -> None:
        """Send again what EC2 has not accepted; give up on what it never did."""
        now = self._shared.clock.now()
        actions: dict[str, list[str]] = {TERMINATE: [], STOP: []}
        expired: list[str] = []
        for pending in self._shared.state.terminations():
            if now - pending.since > self._shared.settings.visibility_timeout_seconds:
                log.warning(
                    "%s: EC2 never accepted %s; giving up", pending.instance_id, pending.action
                )
                expired.append(pending.instance_id)
            else:
                actions.setdefault(pending.action, []).append(pending.instance_id)
        self._shared.state.forget_terminations(expired)
        self._send(actions)

    def _send(
        self, actions: Mapping[str, list[str]], taken: Mapping[str, Node] | None = None
    ) -> None:
        """Send each action; ids EC2 accepted leave the retry list, the rest stay on it
        (a NotFound on a fresh id means the instance will still run). An id EC2 refused
        (termination protection) still runs: it is no longer "gone", so Ray keeps seeing
        it, with the node it was (``taken``) or from the next listing."""
        for action, ids in actions.items():
            if not ids:
                continue
            try:
                if action == TERMINATE:
                    result = self._shared.cloud.terminate(ids)
                else:
                    result = self._shared.cloud.change_state(STOP, ids)
            except LaunchRejected as exc:
                if action != STOP:
                    log.info("%s on %d nodes deferred (%s)", action, len(ids), exc.code)
                    continue
                # EC2 will not stop them (a spot instance, an instance-store root):
                # terminate them instead, as Ray's provider does for spot nodes.
                log.warning(
                    "StopInstances refused (%s); terminating %s instead", exc.code, sorted(ids)
                )
                self._send({TERMINATE: ids}, taken)
                continue
            except UNANSWERED as exc:
                log.info(
                    "%s on %d nodes deferred (%s)", action, len(ids), self._shared.reasons(exc)
                )
                continue
            self._shared.state.forget_terminations(list(result.states))
            for node_id, reason in result.refused.items():
                log.warning("%s refused for %s: %s; the node stays", action, node_id, reason)
            self._restore(list(result.refused), taken or {})

    def _restore(self, node_ids: list[str], taken: Mapping[str, Node]) -> None:
        """Nodes a refused termination leaves running go back in the book."""
        if not node_ids:
            return
        restored = self._shared.book.put_back(node_ids, taken)
        self._shared.state.forget_terminations(node_ids)
        self._shared.state.add_launches(restored)
