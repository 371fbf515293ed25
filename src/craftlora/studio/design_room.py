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
from craftlora.models.presets import PresetError, get_preset, preset_for
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


def _sampling_defaults(model: str) -> dict[str, Any]:
    """The form's sampler, steps and CFG: the model family's preset (SD 1.5's for a hub id)."""
    try:
        p = preset_for(model)
    except PresetError:
        p = get_preset("sd15")
    return {"sampler": p.sampler, "steps": p.steps, "cfg": p.cfg}


class DesignRoom:
    """The design tab: its components (``layout``) and the handlers of their events."""

    def __init__(self, ctx, engine: DesignEngine, worker: Worker):
        self.ctx, self.engine, self.worker = ctx, engine, worker
        self.attrs = list(ctx.config.attributes)

    # -- components ----------------------------------------------------------------------
    def layout(self) -> None:
        ctx = self.ctx
        self.sid, self.selected = gr.State(None), gr.State(None)
        with gr.Row():
            self.name = gr.Textbox(label="session name", value="design", elem_id="ds-name")
            self.designer = gr.Textbox(label="designer", elem_id="ds-designer")
            self.new = gr.Button("New session", elem_id="ds-new")
            self.sessions = gr.Dropdown(_session_choices(ctx), label="reload a session",
                                        elem_id="ds-sessions")
            self.load = gr.Button("Load", elem_id="ds-load")
        with gr.Row():
            with gr.Column(scale=3):
                self.form = self._form()
            with gr.Column(scale=2):
                self.sketch = gr.Sketchpad(
                    label="sketch (draw)", type="numpy", elem_id="ds-sketch",
                    canvas_size=(256, 256), image_mode="RGB", layers=False, transforms=(),
                    format="png", brush=gr.Brush(colors=["#000000"], default_size=6))
                self.upload = gr.File(label="or upload a sketch", file_types=["image"],
                                      type="filepath", elem_id="ds-upload")
        with gr.Row():
            self.generate = gr.Button("Generate", variant="primary", elem_id="ds-generate")
            self.cancel = gr.Button("Cancel", variant="stop", elem_id="ds-cancel")
        self.progress = gr.HTML(_progress(0, "idle"), elem_id="ds-progress")
        self.status = gr.Markdown(elem_id="ds-status")
        self.gallery = gr.Gallery(label="candidates", columns=8, height=260,
                                  elem_id="ds-gallery", allow_preview=False)
        self.table = gr.HTML(_table(None), elem_id="ds-f1")
        with gr.Row():
            self.pick = gr.Button("Pick / unpick", elem_id="ds-pick")
            self.star = gr.Button("Star / unstar", elem_id="ds-star")
            self.note = gr.Textbox(label="note", elem_id="ds-note")
            self.save_note = gr.Button("Save note", elem_id="ds-save-note")
        with gr.Row():
            self.strength = gr.Slider(0.1, 1.0, value=0.5, step=0.05, label="vary strength")
            self.vary = gr.Button("Vary (img2img)", elem_id="ds-vary")
            self.seeds = gr.Button("Seed variations", elem_id="ds-seeds")
        with gr.Row():
            self.feed = gr.Button("Feed back picks", elem_id="ds-feed")
            self.next = gr.Button("Next round config", elem_id="ds-next")
            self.export = gr.Button("Export collection", elem_id="ds-export")

    def _form(self) -> list[Any]:
        """Attributes, free text, negative, LoRA slots, sampler, steps, CFG, seed, N, scale."""
        form: list[Any] = [gr.Dropdown([ANY, *a.values], value=ANY, label=n,
                                       elem_id=f"ds-a-{n}")
                           for n, a in self.ctx.config.attributes.items()]
        form += [gr.Textbox(label="free text", elem_id="ds-free"),
                 gr.Textbox(DEFAULT_NEGATIVE, label="negative", elem_id="ds-negative")]
        for k in range(LORA_SLOTS):
            with gr.Row():
                form += [gr.Dropdown([NONE, *_lora_names(self.ctx.root)], value=NONE,
                                     label=f"LoRA {k + 1}", elem_id=f"ds-lora-{k}"),
                         gr.Slider(0, 1.5, value=0.8, step=0.05, label="weight")]
        with gr.Row():
            preset = _sampling_defaults(self.engine.model)
            form += [gr.Dropdown(sampler_names(), value=preset["sampler"], label="sampler"),
                     gr.Slider(1, 60, value=preset["steps"], step=1, label="steps",
                               elem_id="ds-steps"),
                     gr.Slider(1, 15, value=preset["cfg"], step=0.25, label="CFG")]
        with gr.Row():
            form += [gr.Number(0, precision=0, label="seed", elem_id="ds-seed"),
                     gr.Slider(1, 8, value=4, step=1, label="candidates", elem_id="ds-n"),
                     gr.Slider(0, 2, value=1.0, step=0.05, label="ControlNet scale")]
        return form

    # -- events --------------------------------------------------------------------------
    def wire(self) -> None:
        outs = [self.sid, self.gallery, self.table, self.status, self.progress]
        vouts = outs[:4]
        gen: dict[str, Any] = dict(concurrency_id="design", concurrency_limit=2)
        sel = [self.sid, self.selected]
        self.generate.click(self.on_generate, [self.sid, self.sketch, self.upload, *self.form],
                            outs, **gen)
        self.vary.click(self.on_img2img, [*sel, self.strength], outs, **gen)
        self.seeds.click(self.on_seeds, [*sel, self.strength], outs, **gen)
        self.cancel.click(self.on_cancel, [self.sid], [self.status])
        self.gallery.select(self.on_select, [self.sid], [self.selected, self.status])
        self.pick.click(lambda i, s: self.edit(i, s, "picked"), sel, vouts)
        self.star.click(lambda i, s: self.edit(i, s, "starred"), sel, vouts)
        self.save_note.click(lambda i, s, t: self.edit(i, s, "note", t), [*sel, self.note],
                             vouts)
        self.feed.click(lambda i: self.act(i, self._feed), [self.sid], vouts)
        self.next.click(lambda i: self.act(i, self._next), [self.sid], vouts)
        self.export.click(lambda i: self.act(i, self._export), [self.sid], vouts)
        self.new.click(self.on_new, [self.name, self.designer], [*vouts, self.sessions])
        self.load.click(self.on_load, [self.sessions], [*vouts, self.sketch, *self.form])
        self.sessions.focus(self.refresh, None, [self.sessions])

    def refresh(self) -> Any:
        return gr.update(choices=_session_choices(self.ctx))

    def request(self, values: list[Any]) -> RoundRequest:
        n_attr = len(self.attrs)
        a = dict(zip(self.attrs, values[:n_attr], strict=True))
        free_t, neg, *rest = values[n_attr:]
        slots, (smp, st, c, sd, n, scale) = rest[:2 * LORA_SLOTS], rest[2 * LORA_SLOTS:]
        loras = [(slots[i], float(slots[i + 1])) for i in range(0, len(slots), 2)
                 if slots[i] not in (None, NONE)]
        return RoundRequest(attributes={k: v for k, v in a.items() if v and v != ANY},
                            free_text=free_t or "", negative=neg or "", loras=loras,
                            sampler=smp, steps=int(st), cfg=float(c), seed=int(sd or 0),
                            n=int(n), controlnet_scale=float(scale))

    def form_values(self, state: dict[str, Any]) -> list[Any]:
        """The form as the session's newest round left it (so the next round goes on)."""
        if not state["rounds"]:
            return [gr.skip()] * len(self.form)
        r = state["rounds"][-1]
        slots: list[Any] = []
        for k in range(LORA_SLOTS):
            lo = r["loras"][k] if k < len(r["loras"]) else None
            slots += [lo["name"] if lo else NONE, lo["weight"] if lo else 0.8]
        return [*(r["attributes"].get(a, ANY) for a in self.attrs), r["free_text"],
                r["negative"], *slots, r["sampler"], r["steps"], r["cfg"], r["seed"], r["n"],
                r["controlnet_scale"]]

    def view(self, session_id: int | None, msg: str = "") -> tuple[Any, ...]:
        state = load_session(self.ctx, session_id) if session_id is not None else None
        return (session_id, _gallery(self.ctx, state), _table(state),
                msg or (f"session #{session_id} · {state['name']}" if state else ""))

    def _start(self, session_id: int, req: RoundRequest, sketch_data: tuple[bytes, str] | None,
               parent: tuple[int, int] | None) -> tuple[Any, Any, int]:
        """Check the request, store its sketch, start the round; (job, sketch, round index)."""
        ctx, engine = self.ctx, self.engine
        state = load_session(ctx, session_id)
        compose_prompt(ctx, req.attributes, req.free_text)  # refuse a bad form up front
        sk, parent_image = None, None
        if sketch_data is not None:
            sk = read_sketch(*sketch_data, engine.size)
            store_sketch(ctx, session_id, sk)
        elif state.get("sketch") and parent is not None:
            sk = read_sketch(confine(ctx.root, state["sketch"]).read_bytes(), state["sketch"],
                             engine.size)
        if req.kind == "img2img":
            c = candidate(state, *parent)
            parent_image = Image.open(confine(ctx.root, c["file"])).convert("RGB")
        index = len(state["rounds"])
        job = self.worker.start(lambda j: engine.run_round(session_id, index, req, sk,
                                                           parent_image, j), owner=session_id)
        return job, sk, index

    def run(self, session_id: int | None, req: RoundRequest,
            sketch_data: tuple[bytes, str] | None,
            parent: tuple[int, int] | None) -> Iterator[tuple[Any, ...]]:
        try:
            if session_id is None:
                session_id, _ = new_session(self.ctx, "design", "")
            job, sk, index = self._start(session_id, req, sketch_data, parent)
        except (DesignError, SessionError, BadImageError, Busy, LoraNotFoundError,
                OSError) as e:
            yield (session_id, gr.skip(), gr.skip(), f"**{e}**", _progress(0, "refused"))
            return
        while job.running:
            yield (session_id, gr.skip(), gr.skip(), gr.skip(),
                   _progress(job.progress, job.message))
            time.sleep(POLL_S)
        if job.error is not None:
            yield (*self.view(session_id, f"**{job.error}**"), _progress(0, "stopped"))
            return
        state = load_session(self.ctx, session_id)  # others may have written meanwhile
        state["rounds"].append(job.result)
        if sk is not None:
            state["sketch"] = store_sketch(self.ctx, session_id, sk)
        self.ctx.tables.save_session(state, session_id)
        msg = f"round {index}: {req.n} candidates in {job.result['wall_s']:.1f} s"
        yield (*self.view(session_id, msg), _progress(1, "done"))

    def on_generate(self, session_id, drawn, up, *values):
        try:
            data = _sketch_bytes(drawn, up)
        except (DesignError, OSError) as e:
            yield (session_id, gr.skip(), gr.skip(), f"**{e}**", _progress(0, "refused"))
            return
        yield from self.run(session_id, self.request(list(values)), data, None)

    def on_vary(self, session_id, sel, strength: float, img2img: bool):
        if session_id is None or sel is None:
            yield (session_id, gr.skip(), gr.skip(), "**select a candidate first**", gr.skip())
            return
        state = load_session(self.ctx, session_id)
        rnd, c = state["rounds"][sel[0]], candidate(state, *sel)
        req = RoundRequest(**{k: rnd[k] for k in RoundRequest.__dataclass_fields__
                              if k in rnd and k != "loras"})
        req.loras = [(x["name"], x["weight"]) for x in rnd["loras"]]
        req.seed, req.parent = c["seed"] + 1, {"round": sel[0], "candidate": sel[1]}
        req.kind = "img2img" if img2img else "txt2img"
        req.strength = float(strength) if img2img else req.strength
        yield from self.run(session_id, req, None, sel)

    def on_img2img(self, session_id, sel, strength):
        yield from self.on_vary(session_id, sel, strength, True)

    def on_seeds(self, session_id, sel, strength):
        yield from self.on_vary(session_id, sel, strength, False)

    def on_cancel(self, session_id) -> str:
        return "cancelling…" if self.worker.cancel(session_id) else "nothing of yours is running"

    def on_select(self, session_id, evt: gr.SelectData):
        state = load_session(self.ctx, session_id) if session_id is not None else None
        flat = [(r["index"], c["k"]) for r in (state or {}).get("rounds", [])
                for c in r["candidates"]]
        if evt.index is None or evt.index >= len(flat):
            return None, "nothing selected"
        r, k = flat[evt.index]
        return (r, k), f"selected round {r} candidate {k}"

    def edit(self, session_id, sel, what: str, text: str = ""):
        if session_id is None or sel is None:
            return self.view(session_id, "**select a candidate first**")
        state = load_session(self.ctx, session_id)
        c = candidate(state, *sel)
        if what == "note":
            c["note"] = " ".join(text.split())
        else:
            c[what] = not c[what]
        self.ctx.tables.save_session(state, session_id)
        done = "saved" if what == "note" else ("on" if c[what] else "off")
        return self.view(session_id, f"round {sel[0]} candidate {sel[1]}: {what} {done}")

    def act(self, session_id, fn):
        if session_id is None:
            return self.view(None, "**start or load a session first**")
        try:
            msg = fn(session_id, load_session(self.ctx, session_id))
        except (SessionError, OSError) as e:
            msg = f"**{e}**"
        return self.view(session_id, msg)

    def _feed(self, i: int, state: dict[str, Any]) -> str:
        r = feed_back(self.ctx, i, state)
        return f"fed back: set `{r['set']}` (+{r['added']}, {r['already']} already there)"

    def _next(self, i: int, state: dict[str, Any]) -> str:
        return "wrote " + write_next_round(self.ctx, i, state, self.engine.model,
                                           self.engine.size[0])

    def _export(self, i: int, state: dict[str, Any]) -> str:
        return "exported to " + export_collection(self.ctx, i, state)

    def on_new(self, name: str, designer: str):
        i, _ = new_session(self.ctx, name, designer)
        return (*self.view(i, f"new session #{i}"),
                gr.update(choices=_session_choices(self.ctx), value=i))

    def on_load(self, i):
        if i is None:
            return (*self.view(None, "**choose a session**"),
                    *[gr.skip()] * (1 + len(self.form)))
        state = load_session(self.ctx, int(i))
        sketch: Any = gr.skip()
        if state.get("sketch"):  # the session's sketch back on the canvas
            a = np.asarray(Image.open(confine(self.ctx.root, state["sketch"])).convert("RGB"))
            sketch = {"background": a, "layers": [], "composite": a}
        return (*self.view(int(i), f"loaded session #{int(i)} · {state['name']}"), sketch,
                *self.form_values(state))


def build_design_room(ctx, engine: DesignEngine, worker: Worker
                      ) -> tuple[gr.Dropdown, Callable[[], Any]]:
    """The design tab (inside an open ``gr.Blocks``); returns the session picker and its
    refresh, for the page's load event."""
    room = DesignRoom(ctx, engine, worker)
    room.layout()
    room.wire()
    return room.sessions, room.refresh
