"""The Ray provider's terminations, journaled: idempotent, and what EC2 has not accepted yet
(a fresh id it does not know, throttling) stays in the state file and is sent again at each
update, since the instance would otherwise run and be billed. With ``cache_stopped_nodes``
on-demand nodes are stopped instead; spot nodes and nodes of unknown lifecycle terminated.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from steadyscale.errors import LaunchRejected
from steadyscale.providers.protocol import CloudProvider
from steadyscale.ray.book import Node, NodeBook
from steadyscale.ray.journal import PendingTermination, StateFile
from steadyscale.ray.unanswered import UNANSWERED, Reasons
from steadyscale.retries.clock import Clock

log = logging.getLogger("steadyscale.ray")

TERMINATE = "TerminateInstances"
STOP = "StopInstances"


class Terminator:
    """``terminate_nodes``, and the terminations EC2 has not accepted yet, retried."""

    def __init__(
        self,
        *,
        cloud: CloudProvider,
        book: NodeBook,
        state: StateFile,
        clock: Clock,
        cache_stopped_nodes: bool,
        visibility_timeout: float,
        reasons: Reasons,
    ) -> None:
        self._cloud = cloud
        self._book = book
        self._state = state
        self._clock = clock
        self._cache_stopped_nodes = cache_stopped_nodes
        self._visibility_timeout = visibility_timeout
        self._reasons = reasons

    def terminate(self, node_ids: list[str]) -> None:
        if not node_ids:
            return
        now = self._clock.now()
        actions: dict[str, list[str]] = {TERMINATE: [], STOP: []}
        took = self._book.take(node_ids)
        for node_id, node in took.items():
            # Stop only what is known to be on-demand: stopping a spot instance fails.
            stop = self._cache_stopped_nodes and node is not None and node.lifecycle == "on-demand"
            actions[STOP if stop else TERMINATE].append(node_id)
        everything = [i for ids in actions.values() for i in ids]
        self._state.forget_launches(everything)
        self._state.add_terminations(
            [
                PendingTermination(instance_id=i, action=a, since=now)
                for a, ids in actions.items()
                for i in ids
            ]
        )
        self._send(actions, {i: node for i, node in took.items() if node is not None})

    def retry(self) -> None:
        """Send again what EC2 has not accepted; give up on what it never did."""
        now = self._clock.now()
        actions: dict[str, list[str]] = {TERMINATE: [], STOP: []}
        expired: list[str] = []
        for pending in self._state.terminations():
            if now - pending.since > self._visibility_timeout:
                log.warning(
                    "%s: EC2 never accepted %s; giving up", pending.instance_id, pending.action
                )
                expired.append(pending.instance_id)
            else:
                actions.setdefault(pending.action, []).append(pending.instance_id)
        self._state.forget_terminations(expired)
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
                    result = self._cloud.terminate(ids)
                else:
                    result = self._cloud.change_state(STOP, ids)
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
                log.info("%s on %d nodes deferred (%s)", action, len(ids), self._reasons(exc))
                continue
            self._state.forget_terminations(list(result.states))
            for node_id, reason in result.refused.items():
                log.warning("%s refused for %s: %s; the node stays", action, node_id, reason)
            self._restore(list(result.refused), taken or {})

    def _restore(self, node_ids: list[str], taken: Mapping[str, Node]) -> None:
        """Nodes a refused termination leaves running go back in the book."""
        if not node_ids:
            return
        restored = self._book.put_back(node_ids, taken)
        self._state.forget_terminations(node_ids)
        self._state.add_launches(restored)
