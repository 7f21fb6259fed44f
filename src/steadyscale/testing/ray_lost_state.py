"""Ray's own ``StandardAutoscaler`` losing the state file of steadyscale's provider while the
cluster runs: N workers run, M more were just launched and EC2 does not list them yet, and
Ray's autoscaler restarts with the file deleted or pointed at a new ``state_path`` (a new
host). The run then goes on to N + M and back to 0; the emulator's ground truth says how
many were launched twice, terminated at the loss, or left running.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path

from steadyscale.emulator import Emulator, InstanceState
from steadyscale.testing.ray_harness import Outcome, RayScenario, counting_ray_errors

# How the state file is lost: deleted in place, or the provider given another path.
LOSSES = ("deleted", "new path")


@dataclass
class LostStateOutcome(Outcome):
    running_at_loss: int = 0  # workers running and listed before the last launch
    hidden_at_loss: int = 0  # of the workers launched after them, those unlisted at the loss
    terminated_at_loss: int = 0  # of the workers alive at the loss, those gone before scale-down


class LostStateScenario(RayScenario):
    """``run_losing_state(running, invisible, how)``; see the module doc. Our provider only."""

    def __init__(
        self,
        *,
        how: str,
        emulator: Emulator,
        state_dir: Path,
        hold_seconds: float | None = None,
        name: str = "lost",
    ) -> None:
        """``hold_seconds``: the provider's ``lost_state_hold_seconds`` (None: its default)."""
        if how not in LOSSES:
            raise ValueError(f"how must be one of {LOSSES}, not {how!r}")
        super().__init__("steadyscale", emulator=emulator, state_dir=state_dir, name=name)
        if hold_seconds is not None:
            self.provider["lost_state_hold_seconds"] = hold_seconds
        self.how = how
        self._lose_at_next_start = False
        self._shown: set[str] = set()  # the workers running before the last launch
        self._hidden_at_loss = 0

    def _alive_ids(self) -> set[str]:
        return {
            i.instance_id
            for i in self._cluster(include_gone=False)
            if i.state in (InstanceState.PENDING, InstanceState.RUNNING)
        }

    def _new_autoscaler(self) -> None:
        if self._lose_at_next_start:
            self._lose_at_next_start = False
            self._lose_state()
        super()._new_autoscaler()

    def _lose_state(self) -> None:
        launched = {i.instance_id for i in self._cluster(include_gone=True)}
        self._hidden_at_loss = len(launched - self._shown - self.listed())
        path = Path(self.provider["state_path"])
        if self.how == "deleted":
            for lost in path.parent.glob(f"{path.name}*"):  # with its -wal and -shm
                lost.unlink()
        else:
            # The cluster config holds this same dict: the next provider reads the new path.
            self.provider["state_path"] = str(path.parent / "new-host" / path.name)

    def _reach(self, workers: int, max_seconds: float) -> float | None:
        start = self.emulator.now()
        while self.emulator.now() - start < max_seconds:
            self._update()
            if self.running() >= workers:
                return self.emulator.now() - start
        return None

    def _reach_listed(self, workers: int, max_seconds: float) -> None:
        """Until ``workers`` run and a listing by the cluster's tag shows them all."""
        start = self.emulator.now()
        self._reach(workers, max_seconds)
        while not self._alive_ids() <= self.listed() or self.running() < workers:
            if self.emulator.now() - start > max_seconds:
                raise TimeoutError(f"{workers} workers not running and listed in {max_seconds} s")
            self._update()

    def run_losing_state(
        self, running: int, invisible: int, *, max_seconds: float = 1200.0
    ) -> LostStateOutcome:
        target = running + invisible
        outcome = LostStateOutcome(provider=self.kind, target=target)
        self.outcome = outcome
        self.start_head()
        with counting_ray_errors() as errors, contextlib.redirect_stdout(sys.stderr):
            self._new_autoscaler()
            self.set_workers(running)
            self._reach_listed(running, max_seconds)
            self._shown = alive = self._alive_ids()
            outcome.running_at_loss = self.running()
            self.set_workers(target)
            self._update()
            self._lose_at_next_start = True
            self._restart_once_launched(target, max_seconds)  # the loss, then a new autoscaler
            outcome.seconds_to_target = self._reach(target, max_seconds)
            outcome.terminated_at_loss = len(alive - self._alive_ids())
            self.set_workers(0)
            start = self.emulator.now()
            while self.emulator.now() - start < max_seconds and self.alive() > 0:
                self._update()
        launched = len(self._cluster(include_gone=True))
        outcome.update_errors = errors.count
        outcome.error_samples = errors.samples
        outcome.launched = launched
        outcome.duplicates = max(0, launched - target)
        outcome.leaks = self.alive()
        outcome.hidden_at_loss = self._hidden_at_loss
        return outcome
