"""Named steps that run once: each writes ``DIR/steps/<name>.json`` (its result and wall time)
when it finishes, and a rerun reads that file instead of running the step again, so a killed
run resumes at its first unfinished step."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from craftlora.data.atomic import atomic_write_json


class StepRunner:
    """Runs named steps once; records each one's wall time."""

    def __init__(self, out: Path, console: Console):
        self.dir = Path(out) / "steps"
        self.console = console
        self.walls: dict[str, float] = {}
        self.resumed: list[str] = []

    def run(self, name: str, title: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        path = self.dir / f"{name}.json"
        if path.is_file():
            rec = json.loads(path.read_text(encoding="utf-8"))
            self.walls[name] = float(rec["wall_s"])
            self.resumed.append(name)
            self.console.print(f"[dim]step {name}: done in an earlier run "
                               f"({rec['wall_s']:.0f} s) — skipped[/]")
            return rec["result"]
        self.console.rule(f"[bold]{title}[/]")
        t0 = time.perf_counter()
        result = fn()
        wall = time.perf_counter() - t0
        self.walls[name] = wall
        atomic_write_json(path, {"result": result, "wall_s": wall})
        self.console.print(f"[green]✓[/] {name} in {wall:.0f} s")
        return result
