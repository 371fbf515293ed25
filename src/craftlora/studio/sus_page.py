"""The usability page: the ten SUS items, one score per participant, the team's summary."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from craftlora.studio.context import StudioContext
from craftlora.studio.sus import ITEMS, SCALE, SUSError, sus_score, sus_summary

SCALE_HELP = "1 = strongly disagree … 5 = strongly agree"


def summary_text(ctx: StudioContext) -> str:
    s = sus_summary([score for _, score in ctx.tables.sus_scores()])
    if not s["n"]:
        return "no responses yet"
    sd = "–" if s["sd"] is None else f"{s['sd']:.1f}"
    return f"n = {s['n']} · mean {s['mean']:.1f} · SD {sd}"


def build_sus_page(ctx: StudioContext) -> tuple[gr.Markdown, Callable[[], str]]:
    """The SUS tab's components and events (inside an open ``gr.Blocks``); returns the team
    summary and its refresh, for the page's load event."""
    gr.Markdown(f"System Usability Scale — {SCALE_HELP}")
    participant = gr.Textbox(label="participant", elem_id="sus-participant")
    radios = [gr.Radio([str(v) for v in SCALE], label=f"{k + 1}. {item}",
                       elem_id=f"sus-item-{k + 1}") for k, item in enumerate(ITEMS)]
    submit = gr.Button("Submit", variant="primary", elem_id="sus-submit")
    result = gr.Markdown(elem_id="sus-result")
    team = gr.Markdown(summary_text(ctx), elem_id="sus-summary")

    def on_submit(name: str, *answers: str | None) -> tuple[str, str]:
        if not name.strip():
            return "**enter a participant name**", summary_text(ctx)
        try:
            score = sus_score([int(a) if a else 0 for a in answers])
        except SUSError as e:
            return f"**{e}**", summary_text(ctx)
        ctx.tables.add_sus(name.strip(), [int(a) for a in answers if a], score)
        return f"SUS score of {name.strip()}: **{score:g}**", summary_text(ctx)

    submit.click(on_submit, [participant, *radios], [result, team])
    return team, lambda: summary_text(ctx)
