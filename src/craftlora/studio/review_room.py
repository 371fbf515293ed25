"""The review room: one synthetic image at a time beside real images of its combination;
accept, reject with a reason, back, undo — by button or key (A, 1–9, B, U)."""

from __future__ import annotations

import html
import json
from typing import Any

import gradio as gr

from craftlora.qc.review import summary
from craftlora.studio.context import StudioContext
from craftlora.studio.review_queue import QC_FILTERS, ReviewError, ReviewPass, image_view, queue_ids

ALL_SETS = "(all sets)"
QUEUE_GROUP = "review"  # one review action at a time, in the order the keys were pressed


def _image_html(view: dict[str, Any] | None, p: ReviewPass | None) -> str:
    if p is None:
        return "<div id='rv-empty'>Enter your name, choose a set and press Start.</div>"
    if view is None:
        return (f"<div id='rv-done' data-decided='{len(p.history)}'>Queue done: "
                f"{len(p.history)} decisions in this pass.</div>")
    real = "".join(f"<img class='rv-real' src='/img/{i}' alt='real {i}'>" for i in view["real"])
    return (
        f"<div class='rv-stage'><img id='rv-image' data-id='{view['id']}' "
        f"data-pos='{p.position}' src='/img/{view['id']}' alt='synthetic {view['id']}'>"
        f"<div class='rv-reals'><div>real · {html.escape(view['combination'])}</div>{real}"
        "</div></div>"
    )


def _details(view: dict[str, Any] | None) -> str:
    if view is None:
        return ""
    qc = ", ".join(f"{q['check']} {'✓' if q['passed'] else '✗'}" for q in view["qc"]) or "none"
    prov = json.dumps({k: view["provenance"][k] for k in sorted(view["provenance"])
                       if k in ("model", "seed", "sampler", "steps", "cfg", "loras", "plan_entry",
                                "generator", "controlnet", "design_session")}, indent=1)
    return (f"**#{view['id']}** · set `{view['set']}` · {view['width']}×{view['height']}\n\n"
            f"**prompt:** {html.escape(view['prompt'])}\n\n"
            f"**attributes:** {html.escape(view['combination'])}\n\n**QC:** {qc}\n\n"
            f"```json\n{prov}\n```")


def _status(p: ReviewPass | None, note: str = "") -> str:
    if p is None:
        return note
    return (f"image {min(p.position + 1, len(p.ids))} of {len(p.ids)} · reviewer "
            f"**{html.escape(p.reviewer)}** · {len(p.history)} decided" + (f" · {note}" if note
                                                                              else ""))


def summary_markdown(ctx: StudioContext, set_name: str | None) -> str:
    s = summary(ctx.catalog, set_name)
    lines = [f"**{s['reviewed']} reviewed · {s['accepted']} accepted · pass rate "
             + (f"{s['pass_rate']:.1%}" if s["pass_rate"] is not None else "–") + "**", "",
             "| set | images | reviewed | accepted | pass rate |", "|---|---|---|---|---|"]
    for name, r in s["sets"].items():
        rate = "–" if r["pass_rate"] is None else f"{r['pass_rate']:.1%}"
        lines.append(f"| {name} | {r.get('images', '')} | {r['reviewed']} | {r['accepted']} |"
                     f" {rate} |")
    for name, r in s["combinations"].items():
        lines.append(f"| {name} |  | {r['reviewed']} | {r['accepted']} | {r['pass_rate']:.1%} |")
    for a in s["agreement"]:
        k = "undefined" if a["kappa"] is None else f"{a['kappa']:.3f}"
        lines.append(f"\nκ {a['reviewers'][0]} / {a['reviewers'][1]}: {k} on {a['images']} "
                     "shared images")
    return "\n".join(lines)


def build_review_room(ctx: StudioContext) -> None:
    """The review tab's components and events (inside an open ``gr.Blocks``)."""
    reasons = ctx.config.review.reasons
    sets = [ALL_SETS, *sorted(ctx.catalog.sets())]
    state = gr.State(None)
    with gr.Row():
        reviewer = gr.Textbox(label="reviewer", elem_id="rv-reviewer", scale=2)
        set_box = gr.Dropdown(sets, value=ALL_SETS, label="set", elem_id="rv-set", scale=2)
        qc = gr.Radio(list(QC_FILTERS), value="any", label="QC status", elem_id="rv-qc", scale=3)
        pending = gr.Checkbox(True, label="only images I have not reviewed", scale=2)
        start = gr.Button("Start", variant="primary", elem_id="rv-start", scale=1)
    status = gr.Markdown(elem_id="rv-status")
    with gr.Row():
        with gr.Column(scale=3):
            stage = gr.HTML(_image_html(None, None), elem_id="rv-stage")
        with gr.Column(scale=2):
            details = gr.Markdown(elem_id="rv-details")
    with gr.Row():
        accept = gr.Button("Accept (A)", variant="primary", elem_id="rv-accept")
        reason_buttons = [gr.Button(f"{k + 1} · {r}", elem_id=f"rv-reason-{k + 1}",
                                    variant="stop") for k, r in enumerate(reasons)]
    with gr.Row():
        text = gr.Textbox(label="reason text (for 'other', optional)", elem_id="rv-text")
        back = gr.Button("Back (B)", elem_id="rv-back")
        undo = gr.Button("Undo (U)", elem_id="rv-undo")
    with gr.Accordion("Summary", open=False):
        refresh = gr.Button("Refresh summary", elem_id="rv-refresh")
        table = gr.Markdown(elem_id="rv-summary")

    def show(p: ReviewPass | None, note: str = "") -> tuple[Any, ...]:
        view = image_view(ctx, p.current) if p is not None and not p.done else None
        return p, _image_html(view, p), _details(view), _status(p, note)

    def on_start(name: str, set_name: str, qc_filter: str, only_pending: bool):
        if not name.strip():
            return None, _image_html(None, None), "", "**enter a reviewer name first**"
        s = None if set_name == ALL_SETS else set_name
        ids = queue_ids(ctx, s, qc_filter, name.strip() if only_pending else None)
        return show(ReviewPass(ids=ids, reviewer=name.strip()))

    def act(p: ReviewPass | None, decision: str, reason: str = "", note_text: str = ""):
        if p is None:
            return None, _image_html(None, None), "", "**press Start first**"
        try:
            if decision == "undo":
                p.undo(ctx)
            elif decision == "back":
                p.back()
            else:
                p.decide(ctx, decision, reason, note_text)
        except ReviewError as e:
            return show(p, f"**{e}**")
        return show(p)

    outs = [state, stage, details, status]
    opts: dict[str, Any] = dict(concurrency_id=QUEUE_GROUP, concurrency_limit=1,
                                trigger_mode="multiple", show_progress="hidden")
    start.click(on_start, [reviewer, set_box, qc, pending], outs, **opts)
    accept.click(lambda p: act(p, "accept"), [state], outs, **opts)
    for r, b in zip(reasons, reason_buttons, strict=True):
        b.click(lambda p, t, r=r: act(p, "reject", r, t), [state, text], outs, **opts)
    back.click(lambda p: act(p, "back"), [state], outs, **opts)
    undo.click(lambda p: act(p, "undo"), [state], outs, **opts)
    refresh.click(lambda s: summary_markdown(ctx, None if s == ALL_SETS else s), [set_box],
                  [table])


KEYS_JS = """
<script>
document.addEventListener('keydown', (e) => {
  const t = e.target;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.isContentEditable)) return;
  const accept = document.getElementById('rv-accept');
  if (!accept || accept.offsetParent === null) return;  // the review tab is not shown
  const k = e.key.toLowerCase();
  const id = k === 'a' ? 'rv-accept' : k === 'b' || k === 'arrowleft' ? 'rv-back'
    : k === 'u' ? 'rv-undo' : /^[1-9]$/.test(k) ? 'rv-reason-' + k : null;
  const button = id && document.getElementById(id);
  if (button) { e.preventDefault(); button.click(); }
});
</script>
"""
