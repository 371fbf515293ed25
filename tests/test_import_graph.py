"""The import graph between stage folders: no cycle, and each room imports only what DESIGN.md
allows. Every ``import`` statement counts, at module level and inside functions alike.

Layers, bottom up:
- the base every stage may import: ``config`` (and any other top-level module), ``runtime``
  (worker processes, the shared base room), ``data``, ``catalog``, ``models``, ``metrics``;
- stages: ``train``, ``generate``, ``qc``, ``classify`` import the base only;
- ``experiment`` composes ``classify`` runs, so it may import ``classify`` too;
- ``character`` is a workflow over stages (prompt plans for ``generate``, kohya counts from
  ``train``, QC verdicts from ``qc``), so it may import those three;
- ``mini`` is a world: its renderers, judge, oracle sets and outline measure use the base and
  the ``classify``, ``generate`` and ``character`` stages (the mini character draws the
  character workflow's prompt axes), and no stage imports the world (only ``experiment``,
  below, and the compositions);
- ``sweep`` composes ``train`` runs and ``generate`` comparisons (and the ``experiment``
  summary's statistics), and nothing below imports it;
- ``style`` (one-shot style LoRA: block discovery, stylize, its study) runs ``train``'s
  style-contrastive mode and ``generate``'s img2img / ControlNet pipelines;
- ``demo``, ``cli`` and ``studio`` compose everything (the studio calls the same stage
  functions as the CLI).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import craftlora

SRC = Path(craftlora.__file__).resolve().parent
BASE = {"config", "runtime", "data", "catalog", "models", "metrics"}
STAGES = {"train", "generate", "qc", "classify"}
ALLOWED: dict[str, set[str]] = {
    **{room: BASE - {room} for room in BASE},
    **{stage: set(BASE) for stage in STAGES},
    "experiment": BASE | {"classify"},
    "character": BASE | {"generate", "train", "qc"},
    "mini": BASE | {"classify", "generate", "character"},
    "sweep": BASE | {"train", "generate", "experiment"},
    "style": BASE | {"train", "generate"},
}
COMPOSERS = {"demo", "cli", "studio"}
# Known exceptions, each (from room, to room): why it is still here.
KNOWN = {
    ("experiment", "mini"): "experiment.runner.prepare builds the mini-kiln workspace when an "
                            "experiment config asks for one (``[prepare]``)",
}


def _module_name(path: Path) -> str:
    parts = ("craftlora", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p) for p in SRC.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """Every craftlora module ``path`` imports, anywhere in the file (absolute names)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            subs = {f"{module}.{a.name}" for a in node.names} & MODULES  # `from pkg import mod`
            found.update(subs)
            if len(subs) < len(node.names):  # names defined in ``module`` itself
                found.add(module)
    return {m for m in found if m == "craftlora" or m.startswith("craftlora.")}


def _room(module: str) -> str | None:
    """The stage folder (or top-level module) a module belongs to; None for the package."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    head = parts[1]
    if (SRC / head).is_dir() or (SRC / f"{head}.py").is_file():
        return head
    return None  # a name imported from the package itself (``from craftlora import x``)


def _graph() -> dict[str, dict[str, set[str]]]:
    """room → imported room → the modules that make the edge."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in sorted(SRC.rglob("*.py")):
        src = _room(_module_name(path))
        if src is None:
            continue
        for imported in _imports(path):
            dst = _room(imported)
            if dst is not None and dst != src:
                graph[src][dst].add(_module_name(path))
    return graph


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_graph_sees_every_room_and_function_level_imports():
    graph = _graph()
    rooms = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert rooms <= set(ALLOWED) | COMPOSERS, f"a room with no rule: {rooms - set(ALLOWED)}"
    # cli imports its stages lazily inside each command: those edges must be seen
    assert {"train", "generate", "qc", "classify"} <= set(graph["cli"])


def test_no_cycle_between_stage_folders():
    edges = {src: set(dsts) for src, dsts in _graph().items()}
    assert _cycle(edges) is None, f"import cycle between folders: {' -> '.join(_cycle(edges))}"


def test_no_cycle_between_modules():
    edges: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        name = _module_name(path)
        edges[name] = {m for m in _imports(path) if m != name}
    cycle = _cycle(edges)
    assert cycle is None, f"import cycle between modules: {' -> '.join(cycle)}"


def test_each_room_imports_only_what_design_allows():
    bad = []
    for src, dsts in sorted(_graph().items()):
        if src in COMPOSERS:
            continue
        for dst, modules in sorted(dsts.items()):
            if dst not in ALLOWED.get(src, set()) and (src, dst) not in KNOWN:
                bad.append(f"{src} -> {dst} (in {', '.join(sorted(modules))})")
    assert not bad, "imports DESIGN.md does not allow:\n" + "\n".join(bad)


def test_known_exceptions_are_still_needed():
    graph = _graph()
    stale = [edge for edge in KNOWN if edge[1] not in graph.get(edge[0], {})]
    assert not stale, f"fixed, remove from KNOWN: {stale}"


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
