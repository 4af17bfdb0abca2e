"""The benchmark's progress bar: rich, on stderr (so JSON on stdout stays clean), as a callback."""

from __future__ import annotations

from typing import Any


class ProgressBar:
    """A context manager yielding ``update(description, fraction)``, or None when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.__enter__()
        self._task = self._bar.add_task("bench", total=1.0)

        def update(description: str, fraction: float) -> None:
            self._bar.update(self._task, description=description, completed=fraction)

        return update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
