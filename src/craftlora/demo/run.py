"""``craftlora demo``: the whole porcelain study on the mini world, one resumable run.

world → LoRA → judge (shipped, or trained) → Table 6 (base vs LoRA) → plan → generate →
oracle → QC → ControlNet figure → experiment → ``demo.json`` + ``report.html``. Each step is
skipped when an earlier run finished it (``OUT/steps``), so a killed demo continues where it
stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from craftlora.data.atomic import atomic_write_json
from craftlora.demo import steps as S
from craftlora.demo.settings import DemoSettings
from craftlora.runtime.steps import StepRunner


class DemoError(ValueError):
    """The output folder holds another kind of demo run, or a step cannot start."""


def _settings_file(out: Path, s: DemoSettings) -> None:
    path = out / "settings.json"
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        try:  # settings added since that run take their defaults
            same = DemoSettings.model_validate(old).model_dump() == s.model_dump()
        except ValueError:
            same = False
        if not same:
            raise DemoError(f"{out} holds a demo run with other settings (preset "
                            f"{old.get('preset')!r}); use another --out or delete it")
    else:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, json.loads(s.model_dump_json()))


def _check_model(source: str) -> None:
    """Fail before any work when the base model cannot be loaded."""
    from craftlora.models.loader import ModelSourceError, load_components

    try:
        load_components(source)
    except (ModelSourceError, OSError, ValueError) as e:
        raise DemoError(f"base model {source!r}: {e}") from e


def run_demo(out: Path, s: DemoSettings, console: Console | None = None,
             progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the demo into ``out``; return demo.json's content."""
    from craftlora.demo import mixing, synthetic, table6
    from craftlora.demo.report import write_report
    from craftlora.experiment.console import results_table
    from craftlora.mini.judge import shipped_judge
    from craftlora.mini.judge_build import use_shipped_judge
    from craftlora.mini.sketch import measure_controlnet
    from craftlora.runtime.workers import one_thread

    one_thread()
    console = console or Console()
    out = Path(out).resolve()
    _check_model(s.model)
    _settings_file(out, s)
    t_run = time.perf_counter()
    steps = StepRunner(out, console)
    ws_dir = S.workspace_dir(out)
    s_json = s.model_dump_json()

    world = steps.run("world", "1. mini-kiln: render, catalog, split, caption, stats",
                      lambda: S.build_world(out, s, progress))
    split = ", ".join(f"{v:,} {k}" for k, v in world["split"].items())
    console.print(f"  {world['images']:,} images, {world['combinations']} combinations, split "
                  f"{split}, captions like {world['caption_example']!r}")

    judge_path = out / "judge" / "judge.safetensors"
    shipped, why = shipped_judge(s.size) if s.judge.use_shipped else (None, "not asked for")
    console.print(f"  judge: {why}")
    lora = steps.run("lora", "2. LoRA on the bundled base (real train split)",
                     lambda: S.train_lora(out, s, progress))
    console.print(f"  {lora['steps']} steps, rank {lora['rank']}, final loss "
                  f"{lora['final_loss']:.4f} → {lora['lora']}")
    judge_fn = ((lambda: use_shipped_judge(shipped, judge_path)) if shipped
                else (lambda: S.train_judge_step(str(out), s_json)))
    judge = steps.run("judge", "3. judge: a classifier trained on fresh balanced true renders",
                      judge_fn)
    h = judge["heldout"]
    console.print(f"  judge ({judge.get('source', 'trained in this run')}) on held-out true "
                  f"renders: exact 4-attribute {h['combo_accuracy']:.3f}, glaze+type "
                  f"{h['glaze_type_accuracy']:.3f}")

    t6 = steps.run("table6", "4. Table 6: base vs LoRA on the same prompts and seeds",
                   lambda: {"table6": table6.run_table6(out / "table6", ws_dir, judge_path,
                                                        lora["lora"], s, progress)})
    print_table6(console, t6["table6"])

    plan_path = ws_dir / "plan.toml"
    tag = f"<lora:{S.LORA_NAME}:{s.lora.weight:g}>"
    plan = steps.run("plan", "5. plan the two synthetic sets (dual strategy)",
                     lambda: synthetic.make_demo_plan(ws_dir, plan_path, s, tag))
    for name, p in plan["sets"].items():
        console.print(f"  {name}: {p['images']} images over {p['combinations']} combinations "
                      f"({p['needed_for_share']} make {p['share']:.0%} of the training set)")
    gen = steps.run("generate", "6. generate the synthetic sets with the LoRA",
                    lambda: synthetic.run_generation(out, ws_dir, plan_path, s, progress))
    n_oracle = max(p["images"] for p in plan["sets"].values())
    oracle = steps.run("oracle", "7. oracle set: fresh true renders (the ideal generator)",
                       lambda: synthetic.run_oracle(ws_dir, n_oracle, s, progress))
    qc = steps.run("qc", "8. automatic QC of every synthetic set",
                   lambda: synthetic.run_quality_control(
                       ws_dir, judge_path, [*synthetic.SETS, "oracle"], progress))
    for name, q in qc.items():
        why = ", ".join(f"{k} {v}" for k, v in q["failures_by_reason"].items()) or "none"
        console.print(f"  {name}: {q['passed_all']}/{q['n']} pass ({q['pass_rate']:.1%}); "
                      f"failures: {why}")
    cn = steps.run("controlnet", "9. sketch guidance: contour F1 of the tiny ControlNet",
                   lambda: measure_controlnet(s.model, s.controlnet_images,
                                              **s.generation.model_dump(include={
                                                  "sampler", "steps", "cfg"})))
    console.print(f"  contour F1 (2 px): {cn['contour_f1']:.3f}" if cn["contour_f1"] is not None
                  else f"  [yellow]not measured:[/] {cn['reason']}")
    exp = steps.run("experiment", "10. experiment: real-only vs mixes × seeds",
                    lambda: mixing.run_mixing(out, ws_dir, s, progress))
    console.print(results_table(exp))
    for note in exp.get("notes", []):
        console.print(f"  [yellow]note:[/] {note}")

    demo = {
        "demo": "craftlora mini-world porcelain study",
        "preset": s.preset,
        "note": s.note,
        "table6": t6["table6"],
        "controlnet": cn,
        "experiment": exp,
        "world": world, "judge": judge, "lora": lora, "plan": plan, "generation": gen,
        "oracle": oracle, "qc": qc,
        "table6_generation": {"model_hash": t6["table6"]["model_hash"]},
        "settings": json.loads(s_json),
        "wall_s_per_step": dict(steps.walls),
        "resumed_steps": steps.resumed,
        "wall_s": sum(steps.walls.values()),
    }
    demo["wall_s_this_invocation"] = time.perf_counter() - t_run
    atomic_write_json(out / "demo.json", demo)
    report = write_report(out, demo)
    console.rule("[bold]done[/]")
    for k, v in steps.walls.items():
        console.print(f"  {k:<12} {v:7.0f} s")
    console.print(f"  total {demo['wall_s']:.0f} s (this invocation "
                  f"{demo['wall_s_this_invocation']:.0f} s)")
    if demo["note"]:
        console.print(f"[bold yellow]{demo['note']}[/]")
    console.print(f"wrote {out / 'demo.json'} and {report}")
    return demo


def print_table6(console: Console, t6: dict[str, Any]) -> None:
    from craftlora.generate.compare import figures_table

    console.print(figures_table(t6, {"base": "base", "lora": "base + LoRA",
                                     "judge_ceiling": "true renders (ceiling)",
                                     "decoder_ceiling": "true renders through the VAE"},
                                "Table 6 (mini world): same prompts, same seeds"))
    for k, v in t6["checks"].items():
        console.print(f"  {'[green]✓[/]' if v else '[yellow]not reached:[/]'} {k}")
