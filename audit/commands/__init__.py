"""Sub-commands that live in their own modules.

Each module here lists its click commands in ``COMMANDS``; :func:`all_commands` collects them,
so a new command is added by adding a module, without editing the CLI's core.
"""

from __future__ import annotations

import importlib
import pkgutil

import click

__all__ = ["all_commands"]


def all_commands() -> list[click.Command]:
    commands: list[click.Command] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        commands.extend(getattr(module, "COMMANDS", []))
    return commands
