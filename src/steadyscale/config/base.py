"""The base of every config model: unknown keys are refused (a misspelt key is an error,
never silently ignored), values are frozen once read, and inf or nan are no numbers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
