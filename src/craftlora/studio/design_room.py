"""The design room: prompt form, LoRAs, settings, a sketch, N candidates with contour F1;
pick, star, note, vary; feed back, next round, export; sessions reload from the catalog."""

from __future__ import annotations

import html
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from craftlora.catalog.workspace import confine
from craftlora.data.imageio import BadImageError
from craftlora.generate.prompts import DEFAULT_NEGATIVE, LoraNotFoundError
from craftlora.generate.samplers import sampler_names
from craftlora.studio.design import (
    DesignEngine,
    DesignError,
    RoundRequest,
    compose_prompt,
    read_sketch,
    store_sketch,
)
from craftlora.studio.sessions import (
    SessionError,
    candidate,
    export_collection,
    feed_back,
    load_session,
    new_session,
    write_next_round,
)
from craftlora.studio.worker import Busy, Worker

ANY = "(any)"
NONE = "(none)"
LORA_SLOTS = 3
POLL_S = 0.15
UPLOAD_MAX_BYTES = 20 * 1024 * 1024


def _lora_names(root: Path) -> list[str]:
    folder = root / "loras"
    return sorted(p.stem for p in folder.glob("*.safetensors")) if folder.is_dir() else []


def _session_choices(ctx) -> list[tuple[str, int]]:
    return [(f"#{i} · {name} · {updated[:16]}", i) for i, name, updated in ctx.tables.sessions()]


def _gallery(ctx, state: dict[str, Any] | None) -> list[tuple[Image.Image, str]]:
    items = []
    for r in (state or {}).get("rounds", []):
        for c in r["candidates"]:
            f1 = "" if c["contour"] is None else f" · F1 {c['contour']['tolerant_f1']:.2f}"
            marks = ("✓" if c["picked"] else "") + ("★" if c["starred"] else "")
            items.append((Image.open(confine(ctx.root, c["file"])).convert("RGB"),
                          f"r{r['index']} c{c['k']} · seed {c['seed']}{f1} {marks}".strip()))
    return items


def _table(state: dict[str, Any] | None) -> str:
    rows = []
    for r in (state or {}).get("rounds", []):
        for c in r["candidates"]:
            f1 = "–" if c["contour"] is None else f"{c['contour']['tolerant_f1']:.3f}"
            rows.append(f"<tr data-round='{r['index']}' data-k='{c['k']}'><td>r{r['index']}</td>"
                        f"<td>c{c['k']}</td><td>{r['kind']}</td><td>{c['seed']}</td>"
                        f"<td class='f1'>{f1}</td><td class='picked'>{'yes' if c['picked'] else ''}"
                        f"</td><td>{'★' if c['starred'] else ''}</td>"
                        f"<td>{html.escape(c['note'])}</td></tr>")
    head = ("<tr><th>round</th><th>cand.</th><th>kind</th><th>seed</th><th>contour F1</th>"
            "<th>picked</th><th>star</th><th>note</th></tr>")
    return f"<table id='ds-table'>{head}{''.join(rows)}</table>"


def _progress(fraction: float, message: str) -> str:
    pct = int(round(fraction * 100))
    return (f"<div id='ds-bar' data-progress='{pct}'><div style='width:{pct}%;background:#f97316;"
            f"height:8px'></div><span>{html.escape(message)}</span></div>")


def _sketch_bytes(drawn: Any, upload: str | None) -> tuple[bytes, str] | None:
    """The upload (a file the browser sent, read once, size-capped) or the drawn canvas."""
    if upload:
        path = Path(upload)
        if path.stat().st_size > UPLOAD_MAX_BYTES:
            raise DesignError(f"{path.name}: larger than {UPLOAD_MAX_BYTES >> 20} MiB")
        return path.read_bytes(), path.name
    layer = drawn.get("composite") if isinstance(drawn, dict) else None
    if layer is None:
        return None
    a = np.asarray(layer)
    if a.size == 0 or a.min() == a.max():
        return None  # an empty canvas
    buf = io.BytesIO()
    Image.fromarray(a.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue(), "drawn sketch"


def build_design_room(ctx, engine: DesignEngine, worker: Worker
                      ) -> tuple[gr.Dropdown, Callable[[], Any]]:
    """The design tab's components and events (inside an open ``gr.Blocks``); returns the
    session picker and its refresh, for the page's load event."""
    attrs = ctx.config.attributes
    sid = gr.State(None)
    selected = gr.State(None)
    with gr.Row():
        name = gr.Textbox(label="session name", value="design", elem_id="ds-name")
        designer = gr.Textbox(label="designer", elem_id="ds-designer")
        new = gr.Button("New session", elem_id="ds-new")
        sessions = gr.Dropdown(_session_choices(ctx), label="reload a session",
                               elem_id="ds-sessions", allow_custom_value=False)
        load = gr.Button("Load", elem_id="ds-load")
    with gr.Row():
        with gr.Column(scale=3):
            attr_boxes = [gr.Dropdown([ANY, *a.values], value=ANY, label=n, elem_id=f"ds-a-{n}")
                          for n, a in attrs.items()]
            free = gr.Textbox(label="free text", elem_id="ds-free")
            negative = gr.Textbox(DEFAULT_NEGATIVE, label="negative", elem_id="ds-negative")
            lora_rows = []
            for k in range(LORA_SLOTS):
                with gr.Row():
                    lora_rows.append(gr.Dropdown([NONE, *_lora_names(ctx.root)], value=NONE,
                                                 label=f"LoRA {k + 1}", elem_id=f"ds-lora-{k}"))
                    lora_rows.append(gr.Slider(0, 1.5, value=0.8, step=0.05, label="weight"))
            with gr.Row():
                sampler = gr.Dropdown(sampler_names(), value="Euler a", label="sampler")
                steps = gr.Slider(1, 60, value=8, step=1, label="steps", elem_id="ds-steps")
                cfg = gr.Slider(1, 15, value=5, step=0.5, label="CFG")
            with gr.Row():
                seed = gr.Number(0, precision=0, label="seed", elem_id="ds-seed")
                count = gr.Slider(1, 8, value=4, step=1, label="candidates", elem_id="ds-n")
                cn_scale = gr.Slider(0, 2, value=1.0, step=0.05, label="ControlNet scale")
        with gr.Column(scale=2):
            sketch = gr.Sketchpad(label="sketch (draw)", type="numpy", elem_id="ds-sketch",
                                  canvas_size=(256, 256), image_mode="RGB", layers=False,
                                  transforms=(), format="png",
                                  brush=gr.Brush(colors=["#000000"], default_size=6))
            upload = gr.File(label="or upload a sketch", file_types=["image"], type="filepath",
                             elem_id="ds-upload")
    with gr.Row():
        generate = gr.Button("Generate", variant="primary", elem_id="ds-generate")
        cancel = gr.Button("Cancel", variant="stop", elem_id="ds-cancel")
    progress = gr.HTML(_progress(0, "idle"), elem_id="ds-progress")
    status = gr.Markdown(elem_id="ds-status")
    gallery = gr.Gallery(label="candidates", columns=8, height=260, elem_id="ds-gallery",
                         allow_preview=False)
    table = gr.HTML(_table(None), elem_id="ds-f1")
    with gr.Row():
        pick = gr.Button("Pick / unpick", elem_id="ds-pick")
        star = gr.Button("Star / unstar", elem_id="ds-star")
        note = gr.Textbox(label="note", elem_id="ds-note")
        save_note = gr.Button("Save note", elem_id="ds-save-note")
    with gr.Row():
        strength = gr.Slider(0.1, 1.0, value=0.5, step=0.05, label="vary strength")
        vary = gr.Button("Vary (img2img)", elem_id="ds-vary")
        seeds = gr.Button("Seed variations", elem_id="ds-seeds")
    with gr.Row():
        feed = gr.Button("Feed back picks", elem_id="ds-feed")
        nxt = gr.Button("Next round config", elem_id="ds-next")
        export = gr.Button("Export collection", elem_id="ds-export")

    form = [*attr_boxes, free, negative, *lora_rows, sampler, steps, cfg, seed, count, cn_scale]

    def request(values: list[Any]) -> RoundRequest:
        a = dict(zip(attrs, values[:len(attrs)], strict=True))
        free_t, neg, *rest = values[len(attrs):]
        slots, (smp, st, c, sd, n, scale) = rest[:2 * LORA_SLOTS], rest[2 * LORA_SLOTS:]
        loras = [(slots[i], float(slots[i + 1])) for i in range(0, len(slots), 2)
                 if slots[i] not in (None, NONE)]
        return RoundRequest(attributes={k: v for k, v in a.items() if v and v != ANY},
                            free_text=free_t or "", negative=neg or "", loras=loras,
                            sampler=smp, steps=int(st), cfg=float(c), seed=int(sd or 0),
                            n=int(n), controlnet_scale=float(scale))

    def view(session_id: int | None, msg: str = "") -> tuple[Any, ...]:
        state = load_session(ctx, session_id) if session_id is not None else None
        return (session_id, _gallery(ctx, state), _table(state),
                msg or (f"session #{session_id} · {state['name']}" if state else ""))

    def run(session_id: int | None, req: RoundRequest, sketch_data: tuple[bytes, str] | None,
            parent: tuple[int, int] | None) -> Iterator[tuple[Any, ...]]:
        try:
            if session_id is None:
                session_id, _ = new_session(ctx, "design", "")
            state = load_session(ctx, session_id)
            compose_prompt(ctx, req.attributes, req.free_text)  # refuse a bad form up front
            sk, parent_image = None, None
            if sketch_data is not None:
                sk = read_sketch(*sketch_data, engine.size)
                state["sketch"] = store_sketch(ctx, session_id, sk)
            elif state.get("sketch") and (req.kind == "img2img" or parent is not None):
                sk = read_sketch(confine(ctx.root, state["sketch"]).read_bytes(),
                                 state["sketch"], engine.size)
            if req.kind == "img2img":
                c = candidate(state, *parent)
                parent_image = Image.open(confine(ctx.root, c["file"])).convert("RGB")
            index = len(state["rounds"])
            job = worker.start(lambda j: engine.run_round(session_id, index, req, sk,
                                                          parent_image, j))
        except (DesignError, SessionError, BadImageError, Busy, LoraNotFoundError,
                OSError) as e:
            yield (session_id, gr.skip(), gr.skip(), f"**{e}**", _progress(0, "refused"))
            return
        while job.running:
            yield (session_id, gr.skip(), gr.skip(), gr.skip(),
                   _progress(job.progress, job.message))
            time.sleep(POLL_S)
        if job.error is not None:
            yield (*view(session_id, f"**{job.error}**"), _progress(0, "stopped"))
            return
        state = load_session(ctx, session_id)  # others may have written meanwhile
        state["rounds"].append(job.result)
        if sk is not None:
            state["sketch"] = state.get("sketch") or store_sketch(ctx, session_id, sk)
        ctx.tables.save_session(state, session_id)
        wall = job.result["wall_s"]
        yield (*view(session_id, f"round {index}: {req.n} candidates in {wall:.1f} s"),
               _progress(1, "done"))

    outs = [sid, gallery, table, status, progress]

    def on_generate(session_id, drawn, up, *values):
        try:
            data = _sketch_bytes(drawn, up)
        except (DesignError, OSError) as e:
            yield (session_id, gr.skip(), gr.skip(), f"**{e}**", _progress(0, "refused"))
            return
        yield from run(session_id, request(list(values)), data, None)

    def on_vary(session_id, sel, s, img2img: bool):
        if session_id is None or sel is None:
            yield (session_id, gr.skip(), gr.skip(), "**select a candidate first**", gr.skip())
            return
        state = load_session(ctx, session_id)
        rnd, c = state["rounds"][sel[0]], candidate(state, *sel)
        req = RoundRequest(**{k: rnd[k] for k in RoundRequest.__dataclass_fields__
                              if k in rnd and k not in ("loras",)})
        req.loras = [(x["name"], x["weight"]) for x in rnd["loras"]]
        req.seed, req.parent = c["seed"] + 1, {"round": sel[0], "candidate": sel[1]}
        req.kind, req.strength = ("img2img", float(s)) if img2img else ("txt2img", req.strength)
        yield from run(session_id, req, None, sel)

    def on_select(session_id, evt: gr.SelectData):
        state = load_session(ctx, session_id) if session_id is not None else None
        flat = [(r["index"], c["k"]) for r in (state or {}).get("rounds", [])
                for c in r["candidates"]]
        if evt.index is None or evt.index >= len(flat):
            return None, "nothing selected"
        r, k = flat[evt.index]
        return (r, k), f"selected round {r} candidate {k}"

    def edit(session_id, sel, what: str, text: str = ""):
        if session_id is None or sel is None:
            return (*view(session_id, "**select a candidate first**"),)
        state = load_session(ctx, session_id)
        c = candidate(state, *sel)
        if what == "note":
            c["note"] = " ".join(text.split())
        else:
            c[what] = not c[what]
        ctx.tables.save_session(state, session_id)
        return view(session_id, f"round {sel[0]} candidate {sel[1]}: {what} "
                                f"{'saved' if what == 'note' else ('on' if c[what] else 'off')}")

    def act(session_id, fn):
        if session_id is None:
            return (*view(None, "**start or load a session first**"),)
        try:
            msg = fn(session_id, load_session(ctx, session_id))
        except (SessionError, OSError) as e:
            msg = f"**{e}**"
        return view(session_id, msg)

    def fed(i, st):
        r = feed_back(ctx, i, st)
        return f"fed back: set `{r['set']}` (+{r['added']}, {r['already']} already there)"

    gen_opts: dict[str, Any] = dict(concurrency_id="design", concurrency_limit=2)
    generate.click(on_generate, [sid, sketch, upload, *form], outs, **gen_opts)
    def on_img2img(i, sel, s):
        yield from on_vary(i, sel, s, True)

    def on_seeds(i, sel, s):
        yield from on_vary(i, sel, s, False)

    vary.click(on_img2img, [sid, selected, strength], outs, **gen_opts)
    seeds.click(on_seeds, [sid, selected, strength], outs, **gen_opts)
    cancel.click(lambda: "cancelling…" if worker.cancel() else "nothing is running", None,
                 [status])
    gallery.select(on_select, [sid], [selected, status])
    vouts = [sid, gallery, table, status]
    pick.click(lambda i, s: edit(i, s, "picked"), [sid, selected], vouts)
    star.click(lambda i, s: edit(i, s, "starred"), [sid, selected], vouts)
    save_note.click(lambda i, s, t: edit(i, s, "note", t), [sid, selected, note], vouts)
    feed.click(lambda i: act(i, fed), [sid], vouts)
    nxt.click(lambda i: act(i, lambda i, st: "wrote " + write_next_round(
        ctx, i, st, engine.model, engine.size[0])), [sid], vouts)
    export.click(lambda i: act(i, lambda i, st: "exported to " + export_collection(ctx, i, st)),
                 [sid], vouts)

    def on_new(n, d):
        i, _ = new_session(ctx, n, d)
        return (*view(i, f"new session #{i}"), gr.update(choices=_session_choices(ctx), value=i))

    new.click(on_new, [name, designer], [*vouts, sessions])
    def on_load(i):
        if i is None:
            return (*view(None, "**choose a session**"), *[gr.skip()] * len(form))
        state = load_session(ctx, int(i))
        return (*view(int(i), f"loaded session #{int(i)} · {state['name']}"),
                *form_values(state))

    def form_values(state: dict[str, Any]) -> list[Any]:
        """The form as the session's newest round left it (so the next round goes on)."""
        if not state["rounds"]:
            return [gr.skip()] * len(form)
        r = state["rounds"][-1]
        slots: list[Any] = []
        for k in range(LORA_SLOTS):
            lo = r["loras"][k] if k < len(r["loras"]) else None
            slots += [lo["name"] if lo else NONE, lo["weight"] if lo else 0.8]
        return [*(r["attributes"].get(a, ANY) for a in attrs), r["free_text"], r["negative"],
                *slots, r["sampler"], r["steps"], r["cfg"], r["seed"], r["n"],
                r["controlnet_scale"]]

    load.click(on_load, [sessions], [*vouts, *form])
    def refresh() -> Any:
        return gr.update(choices=_session_choices(ctx))

    sessions.focus(refresh, None, [sessions])
    return sessions, refresh
