"""The web console: sign-in, usage, packs, bills, quote/plan, groups and persons, keys, alerts; the operator view."""

from facecloud.console.app import create_console

__all__ = ["create_console"]
