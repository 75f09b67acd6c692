"""The web console: sign-in, usage, packs, bills, quote/plan, groups, persons, keys, alerts; operator view."""

from facecloud.console.app import create_console

__all__ = ["create_console"]
