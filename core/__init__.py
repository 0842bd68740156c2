"""Shared code for every task: IO with clear errors and atomic writes, metrics and plots,
Lightning training with run records, offline pretrained weights.

Importing this package first makes every run offline and keeps caches inside the repository.
"""
from core.env import REPO_ROOT, configure_offline_environment

configure_offline_environment()

__all__ = ["REPO_ROOT", "configure_offline_environment"]
