"""Pages of an account's groups and persons."""

from __future__ import annotations

PAGES: list = []
