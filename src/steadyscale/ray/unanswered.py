"""Calls of the Ray provider that EC2 did not answer: which failures are answered from what
the provider knows instead of failing Ray's update, and how they are logged.
"""

from __future__ import annotations

import logging

from steadyscale.errors import CloudError, ProviderSetupError

log = logging.getLogger("steadyscale.ray")

# A call that failed this way is answered from what the provider knows: EC2 errors, and
# credentials EC2 refuses (which may be fixed, or rotate back, while Ray keeps running).
UNANSWERED = (CloudError, ProviderSetupError)


class Reasons:
    """A failed call's reason for a log line. Refused credentials are logged once per kind
    as a warning: Ray keeps asking, and the answers come from the book."""

    def __init__(self) -> None:
        self._setup_errors_logged: set[str] = set()

    def __call__(self, exc: CloudError | ProviderSetupError) -> str:
        if isinstance(exc, CloudError):
            return exc.code
        message = str(exc)
        if message not in self._setup_errors_logged:
            self._setup_errors_logged.add(message)
            log.warning("EC2 cannot be used: %s; answering from what is known", message)
        return "ProviderSetupError"
