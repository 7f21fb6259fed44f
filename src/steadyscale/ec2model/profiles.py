"""The emulator's built-in profiles: ``none`` (moto's behaviour), ``realistic`` and
``harsh``, as the raw settings each starts from (``settings.build_settings`` layers a file
and overrides on top and validates the result)."""

from __future__ import annotations

from typing import Any

from steadyscale.errors import ConfigError

PROFILES: tuple[str, ...] = ("none", "realistic", "harsh")


def profile_values(name: str) -> dict[str, Any]:
    """The raw settings of a built-in profile."""
    if name == "none":
        # moto's behaviour: everything visible and running at once, no faults.
        return {"profile": "none"}
    if name == "realistic":
        return {
            "profile": "realistic",
            "visibility": {"median": 2, "p99": 30, "max": 120},
            "boot": {"median": 15, "p99": 45, "max": 120},
            "shutdown": {"median": 5, "p99": 20, "max": 60},
            "stale_reads": {
                "probability": 0.1,
                "window": {"median": 2, "p99": 10, "max": 30},
                "listing_flicker_probability": 0.01,
            },
            "throttling": {"enabled": True},
            "errors": {
                "server_error_probability": 0.005,
                "lost_response_probability": 0.005,
                "timeout_probability": 0.002,
                "timeout_seconds": 5,
            },
            "spot": {"interruption_rate_per_hour": 0.05},
            "market": {"launch_template_visibility": {"median": 1, "p99": 5, "max": 15}},
        }
    if name == "harsh":
        return {
            "profile": "harsh",
            "visibility": {"median": 5, "p99": 60, "max": 180},
            "boot": {"median": 30, "p99": 90, "max": 240},
            "shutdown": {"median": 10, "p99": 45, "max": 120},
            "stale_reads": {
                "probability": 0.3,
                "window": {"median": 5, "p99": 30, "max": 90},
                "listing_flicker_probability": 0.05,
            },
            "throttling": {"enabled": True, "scale": 0.5},
            "capacity": {"shortage_probability": 0.05},
            "errors": {
                "server_error_probability": 0.03,
                "lost_response_probability": 0.03,
                "timeout_probability": 0.01,
                "timeout_seconds": 5,
            },
            "spot": {"interruption_rate_per_hour": 0.5},
            "market": {"launch_template_visibility": {"median": 3, "p99": 15, "max": 45}},
        }
    raise ConfigError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)}")
