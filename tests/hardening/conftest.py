"""Fixtures of the hardening suite: the fuzz case count in the terminal summary."""

from __future__ import annotations

import pytest

from tests.hardening.support import FUZZ_CASES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FUZZ_CASES:
        terminalreporter.write_sep("-", f"fuzz cases run: {sum(FUZZ_CASES.values())}")
        for name, count in sorted(FUZZ_CASES.items()):
            terminalreporter.write_line(f"{name}: {count}")
