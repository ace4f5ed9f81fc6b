"""Errors that stop the host from starting, each with one clear message."""

from __future__ import annotations


class StartupError(Exception):
    """The host refuses to start; ``str()`` is the whole message shown to the person."""


class SettingsError(StartupError):
    """A value in ``settings.toml`` or the environment is wrong."""


class PluginError(StartupError):
    """A plugin cannot be loaded or contradicts another one."""

    def __init__(self, plugin: str, entry_point: str | None, fault: str) -> None:
        self.plugin = plugin
        self.entry_point = entry_point
        self.fault = fault
        where = f" (entry point {entry_point})" if entry_point else ""
        super().__init__(f"plugin {plugin!r}{where}: {fault}")
