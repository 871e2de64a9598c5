"""CLI commands of the HTTP service. Module level imports stdlib and propsync core only."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``serve`` and ``apply`` (placeholder until the HTTP service lands)."""
