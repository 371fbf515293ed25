"""Design sessions: rounds kept in the catalog, picks fed back as a synthetic set with their
provenance, the next round's LoRA training config, and an exported collection."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import tomli_w

from craftlora.catalog.store import CatalogError
from craftlora.catalog.workspace import confine
from craftlora.data.atomic import atomic_write_bytes
from craftlora.studio.context import StudioContext
from craftlora.studio.design import session_dir
from craftlora.train.config import TrainConfig

EXPORT_DIR = "exports"
PROVENANCE_KEYS = ("prompt", "negative", "attributes", "loras", "sampler", "scheduler", "steps",
                   "cfg", "model", "model_hash", "controlnet", "sketch", "kind", "parent",
                   "strength")


class SessionError(ValueError):
    """A session action that cannot be carried out; the message says why."""


def new_session(ctx: StudioContext, name: str, designer: str) -> tuple[int, dict[str, Any]]:
    state: dict[str, Any] = {"name": name.strip() or "design", "designer": designer.strip(),
                             "sketch": None, "rounds": [], "fed_back": None,
                             "train_config": None, "export": None}
    return ctx.tables.save_session(state), state


def load_session(ctx: StudioContext, session_id: int) -> dict[str, Any]:
    state = ctx.tables.session(session_id)
    if state is None:
        raise SessionError(f"no design session {session_id}")
    return state


def candidate(state: dict[str, Any], round_index: int, k: int) -> dict[str, Any]:
    try:
        return state["rounds"][round_index]["candidates"][k]
    except (IndexError, KeyError, TypeError) as e:
        raise SessionError(f"no candidate {k} in round {round_index}") from e


def picks(state: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(round, candidate) of every picked candidate, in round order."""
    return [(r, c) for r in state["rounds"] for c in r["candidates"] if c["picked"]]


def provenance(session_id: int, state: dict[str, Any], rnd: dict[str, Any],
               cand: dict[str, Any]) -> dict[str, Any]:
    return {"generator": "craftlora.studio.design", "design_session": session_id,
            "session_name": state["name"], "designer": state["designer"],
            "round": rnd["index"], "candidate": cand["k"], "seed": cand["seed"],
            "source_file": cand["file"], "contour": cand["contour"], "starred": cand["starred"],
            "note": cand["note"], **{k: rnd.get(k) for k in PROVENANCE_KEYS}}


def feed_back(ctx: StudioContext, session_id: int, state: dict[str, Any]) -> dict[str, Any]:
    """Add every pick to the catalog as set ``design-s<id>`` (synthetic, train split), with its
    attributes and provenance; picks already there are skipped."""
    chosen = picks(state)
    if not chosen:
        raise SessionError("pick at least one candidate first")
    set_name = f"design-s{session_id}"
    added, already = [], 0
    for rnd, cand in chosen:
        data = confine(ctx.root, cand["file"]).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if ctx.catalog.id_for_sha(sha) is not None:
            already += 1
            continue
        rel = f"synthetic/{set_name}/r{rnd['index']:02d}-c{cand['k']:02d}-{cand['seed']}.png"
        atomic_write_bytes(confine(ctx.root, rel), data)
        try:
            added.append(ctx.catalog.add_image(
                sha256=sha, path=rel, width=rnd["width"], height=rnd["height"],
                origin="synthetic", set_name=set_name, source="craftlora studio",
                split="train", caption=rnd["prompt"],
                provenance=provenance(session_id, state, rnd, cand),
                attributes=rnd["attributes"]))
        except CatalogError:
            confine(ctx.root, rel).unlink(missing_ok=True)
            raise
    state["fed_back"] = {"set": set_name, "images": ctx.catalog.count(set_name=set_name)}
    ctx.tables.save_session(state, session_id)
    return {"set": set_name, "added": len(added), "already": already, "ids": added}


def write_next_round(ctx: StudioContext, session_id: int, state: dict[str, Any], model: str,
                     resolution: int) -> str:
    """A LoRA training config on the fed-back picks (set ``design-s<id>``, the designer's
    choices, as the lacquer loop fine-tunes on them); written to ``design/s<id>/next-round.toml``.
    """
    if not state.get("fed_back"):
        raise SessionError("feed the picks back first: the next round trains on them")
    rel = f"{session_dir(session_id)}/next-round.toml"
    cfg = TrainConfig.model_validate({
        "name": f"design-s{session_id}", "mode": "lora", "model": model,
        "output_dir": f"../../loras/design-s{session_id}",
        "data": {"workspace": "../..", "split": "train", "origin": "synthetic",
                 "set_name": state["fed_back"]["set"], "resolution": resolution}})
    data = cfg.model_dump(mode="json", exclude_none=True)
    header = (f"# next design round of session {session_id} ({state['name']}): LoRA on the "
              f"picks fed back as set {state['fed_back']['set']}\n"
              f"#   craftlora train {rel}\n")
    atomic_write_bytes(confine(ctx.root, rel), (header + tomli_w.dumps(data)).encode())
    state["train_config"] = rel
    ctx.tables.save_session(state, session_id)
    return rel


def export_collection(ctx: StudioContext, session_id: int, state: dict[str, Any]) -> str:
    """Copy picked and starred candidates with ``collection.json`` (their provenance) to
    ``exports/design-s<id>/``."""
    chosen = [(r, c) for r in state["rounds"] for c in r["candidates"]
              if c["picked"] or c["starred"]]
    if not chosen:
        raise SessionError("pick or star a candidate first")
    rel = f"{EXPORT_DIR}/design-s{session_id}"
    folder = confine(ctx.root, rel)
    if folder.exists():
        shutil.rmtree(folder)
    items = []
    for rnd, cand in chosen:
        name = Path(cand["file"]).name
        atomic_write_bytes(folder / name, confine(ctx.root, cand["file"]).read_bytes())
        items.append({"file": name, **provenance(session_id, state, rnd, cand)})
    atomic_write_bytes(folder / "collection.json",
                       json.dumps({"session": session_id, "name": state["name"],
                                   "items": items}, indent=2).encode())
    state["export"] = rel
    ctx.tables.save_session(state, session_id)
    return rel
