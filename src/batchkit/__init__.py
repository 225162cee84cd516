"""batchkit: run containerized batch work on AWS Batch, or the same jobs on one machine."""

from __future__ import annotations

__version__ = "0.1.0"
