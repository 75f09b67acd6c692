"""Progress bars with an ETA for the long commands (eval lfw, eval search, models fetch, gallery rebuild-index).

The bar is drawn on stderr and only on a terminal, so stdout keeps nothing but the command's JSON result and a
script reading it (`facecloud eval lfw ... | jq .accuracy`) sees no difference. Drawn by rich."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# (done, total): how far the work is; total may change once the work knows it (None: not known yet).
Report = Callable[[int, int | None], None]


@contextmanager
def progress_bar(description: str, total: int | None = None, console: Console | None = None) -> Iterator[Report]:
    console = console or Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not console.is_terminal, transient=False) as bar:
        task = bar.add_task(description, total=total)

        def report(done: int, new_total: int | None = None) -> None:
            bar.update(task, completed=done, **({"total": new_total} if new_total is not None else {}))

        yield report


def counting(report: Report, total: int | None = None) -> Callable[[], None]:
    """A step function for loops that only know that one more item is done."""
    done = 0
    if total is not None:
        report(0, total)

    def step() -> None:
        nonlocal done
        done += 1
        report(done, None)

    return step
