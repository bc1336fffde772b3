"""What every command gets from the main command group: the workspace and the reports folder
(``--workspace``, ``--reports``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

import click

if TYPE_CHECKING:  # imported by commands: --help stays light
    from audit.workspace import Workspace

__all__ = ["Settings", "group_settings"]


class Settings(Protocol):
    workspace: Workspace
    reports: Path


def group_settings() -> Settings:
    """The main group's settings, from inside any command."""
    return cast(Settings, click.get_current_context().find_root().obj)
