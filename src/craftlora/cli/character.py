"""`craftlora character init|prompts|tags|export|eval`: the character workflow (seed 004)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from craftlora.cli.app import DATA, app, console, fail, print_json, report

character = typer.Typer(help="Character LoRA workflow: spec → prompts → candidates → tags → "
                              "kohya dataset → LoRA → consistency report.")
app.add_typer(character, name="character", rich_help_panel=DATA)

WsArg = Annotated[Path, typer.Argument(help="workspace folder")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document")]


@character.command("init")
def init(ws: WsArg,
         spec: Annotated[Path, typer.Option(help="character JSON: description + objects")],
         trigger: Annotated[str, typer.Option(help="trigger word, first tag of every caption")],
         as_json: JsonOpt = False) -> None:
    """Validate the spec against the shipped schema and store it (creates WS if new)."""
    from craftlora.character.spec import CharacterError, init_character

    try:
        meta = init_character(ws, spec, trigger)
    except (CharacterError, OSError, ValueError) as e:
        fail(e)
    report(meta, as_json, f"character {trigger!r} stored in {ws / 'character'} "
                          f"({meta['objects']} identity objects)")


@character.command("prompts")
def prompts(ws: WsArg,
            candidates: Annotated[int, typer.Option(min=1, help="candidate prompts")] = 80,
            eval_prompts: Annotated[int, typer.Option(min=1, help="held-out prompts")] = 8,
            per_prompt: Annotated[int, typer.Option(min=2, help="images per held-out prompt")]
            = 4,
            lora: Annotated[str, typer.Option(help="LoRA name in eval-lora prompts")] = "",
            model: Annotated[str, typer.Option(help="model family the settings are for")]
            = "mini",
            seed: Annotated[int, typer.Option()] = 0) -> None:
    """Write WS/character/prompts.toml: a plan for `craftlora generate` (edit it first)."""
    from craftlora.character.prompts import prompt_plan, write_prompts
    from craftlora.character.spec import CHARACTER_DIR, CharacterError, load_character

    try:
        spec, trigger = load_character(ws)
        plan = prompt_plan(spec, trigger, candidates=candidates, eval_prompts=eval_prompts,
                           per_prompt=per_prompt, lora=lora or trigger, model=model, seed=seed)
        path = write_prompts(ws / CHARACTER_DIR / "prompts.toml", plan)
    except (CharacterError, OSError, ValueError) as e:
        fail(e)
    console.print(f"wrote {path}; then: craftlora generate {ws} --plan {path} --set candidates")


@character.command("tags")
def tags(ws: WsArg,
         set_name: Annotated[list[str], typer.Option("--set", help="candidate set(s): keep "
                                                               "those QC passed and no "
                                                               "reviewer rejected")],
         tagger: Annotated[Path | None, typer.Option(help="WD14-style ONNX tagger")] = None,
         tag_list: Annotated[Path | None, typer.Option(help="its selected_tags.csv")] = None,
         threshold: Annotated[float, typer.Option(min=0, max=1)] = 0.35,
         as_json: JsonOpt = False) -> None:
    """Select the kept set (split train), caption it with tags, chart the tag frequencies."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.character.select import select_kept
    from craftlora.character.spec import CHARACTER_DIR, CharacterError, load_character
    from craftlora.character.tags import OnnxTagger, TaggerError, tag_chart, tag_set

    try:
        _, trigger = load_character(ws)
        reader = None
        if tagger is not None:
            if tag_list is None:
                fail("--tagger needs --tag-list (the model's selected_tags.csv)")
            reader = OnnxTagger(tagger, tag_list, threshold)
        with Workspace.open(ws) as w:
            kept = select_kept(w, set_name)
            result = tag_set(w, trigger, reader)
        result["selection"] = kept
        result["chart"] = str(tag_chart(result["frequency"], ws / CHARACTER_DIR / "tags.png"))
    except (CharacterError, TaggerError, OSError, ValueError) as e:
        fail(e)
    report(result, as_json, f"kept {kept['kept']} of {kept['candidates']}; "
                            f"{result['tags_per_image']:.2f} tags per image; "
                            f"chart {result['chart']}")


@character.command("export")
def export(ws: WsArg, out: Annotated[Path, typer.Argument(help="output folder")],
           repeats: Annotated[int, typer.Option(min=1)] = 10,
           epochs: Annotated[int, typer.Option(min=1)] = 10,
           batch_size: Annotated[int, typer.Option(min=1)] = 4,
           resolution: Annotated[int, typer.Option(min=8)] = 1024,
           model: Annotated[str, typer.Option(help="base model for the sd-scripts command")]
           = "BASE_MODEL.safetensors",
           as_json: JsonOpt = False) -> None:
    """The kept set as a kohya folder (<repeats>_<trigger>), dataset.toml and a command."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.character.export import export_kohya
    from craftlora.character.spec import CharacterError, load_character

    try:
        _, trigger = load_character(ws)
        with Workspace.open(ws) as w:
            res = export_kohya(w, out, name=trigger, repeats=repeats, epochs=epochs,
                               batch_size=batch_size, resolution=resolution, model=model)
    except (CharacterError, OSError, ValueError) as e:
        fail(e)
    report(res, as_json, f"{res['images']} images → {res['folder']}; {res['steps']} kohya steps; "
                         f"run {res['command']}")


@character.command("eval")
def evaluate(ws: WsArg,
             world: Annotated[str, typer.Option(help="detectors to read identity with: "
                                                     "'mini' (the mini character)")] = "mini",
             base_set: Annotated[str, typer.Option()] = "eval-base",
             lora_set: Annotated[str, typer.Option()] = "eval-lora",
             as_json: JsonOpt = False) -> None:
    """Identity consistency, tag adherence and LPIPS diversity of base vs LoRA generations
    (generate the plan's eval sets first); writes WS/character/eval.json and eval.html."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.character.evaluate import evaluate as run_eval
    from craftlora.character.evaluate import lpips_net, report_html, set_shots
    from craftlora.character.spec import CHARACTER_DIR, CharacterError, load_character
    from craftlora.data.atomic import atomic_write_json
    from craftlora.generate.plan_model import PlanError, load_plan

    if world != "mini":
        fail(f"--world {world!r}: only the mini character has identity detectors so far")
    from craftlora.mini.character import world as mini

    try:
        _, trigger = load_character(ws)
        with Workspace.open(ws) as w:
            shots = {"base": set_shots(w, base_set), "lora": set_shots(w, lora_set)}
        if not shots["base"] or not shots["lora"]:
            fail(f"{ws}: sets {base_set!r} and {lora_set!r} need images; generate them with "
                 f"craftlora generate {ws} --plan {ws / CHARACTER_DIR / 'prompts.toml'} --set …")
        plan = load_plan(ws / CHARACTER_DIR / "prompts.toml")
        per = max(2, len(shots["lora"]) // max(1, len(plan.get_set("eval-lora").entries)))
        shots["true"] = mini.true_shots(plan.get_set("eval-lora").entries, per)
        figs = run_eval(shots, mini.identity_features, mini.tag_matches, lpips_net(console.print))
        atomic_write_json(ws / CHARACTER_DIR / "eval.json", figs)
        report_html(shots, figs, ws / CHARACTER_DIR / "eval.html", f"character {trigger}")
    except (CharacterError, PlanError, OSError, ValueError) as e:
        fail(e)
    if as_json:
        print_json(figs)
    else:
        for k in ("base", "lora", "true"):
            f = figs[k]
            console.print(f"{k}: identity {f['identity']['share']:.3f}, tag adherence "
                          f"{f['tag_adherence']:.3f}, diversity {f['diversity']:.3f}")
