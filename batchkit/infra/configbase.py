"""What every part of the cluster config is built from: a strict frozen model, and a problem
found by a cross-field rule, tied to the key it is about."""

from __future__ import annotations

from msgspec import Struct
from pydantic import BaseModel, ConfigDict

from batchkit.infra.yamlmarks import KeyPath

RESOURCE_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9-]{0,31}$"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Problem(Struct, frozen=True):
    path: KeyPath
    message: str
