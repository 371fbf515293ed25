"""Grid expansion and override validation."""

import pytest

from craftlora.sweep.config import SweepConfig, SweepConfigError, load_sweep
from craftlora.sweep.expand import expand


def _cfg(**kw) -> SweepConfig:
    return SweepConfig(base="train.toml", **kw)


def test_grid_is_the_cartesian_product_in_order():
    vs = expand(_cfg(grid={"loss.perceptual_weight": [0.0, 0.3],
                           "data.specular_alpha": [0.0, 0.7],
                           "generate.cfg": [1.0, 2.0]}))
    assert len(vs) == 8
    assert vs[0].name == "perceptual_weight=0.0,specular_alpha=0.0,cfg=1.0"
    assert vs[-1].train == {"data.specular_alpha": 0.7, "loss.perceptual_weight": 0.3}
    assert vs[-1].generate == {"cfg": 2.0}
    # cfg-only siblings share one trained LoRA; other training settings do not
    assert vs[0].train_key == vs[1].train_key != vs[2].train_key
    assert len({v.train_key for v in vs}) == 4


@pytest.mark.parametrize("key, named", [
    ("loss.perceptual_wieght", "'loss.perceptual_wieght'"),
    ("optimiser.lr", "'optimiser'"),
    ("generate.eta", "'generate.eta'"),
    ("lora", "is a section"),
    ("seed", "set by the sweep"),
])
def test_an_unknown_key_names_itself(key, named):
    with pytest.raises(SweepConfigError, match="unknown key|section|set by") as e:
        expand(_cfg(variants=[{"name": "a"}, {"name": "b", "set": {key: 1}}]), "s.toml")
    assert named in str(e.value) and "s.toml" in str(e.value)
    assert "variant 'b'" in str(e.value) or key == "lora"


def test_list_variants_names_and_sections(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('base = "t.toml"\nseeds = [1, 2]\n[[variants]]\nname = "base"\n'
                 '[[variants]]\nname = "perc"\nset = { "loss.perceptual_weight" = 0.3 }\n')
    cfg = load_sweep(p)
    assert cfg.base == tmp_path / "t.toml"
    vs = expand(cfg)
    assert [v.name for v in vs] == ["base", "perc"] and vs[0].train == {}
    p.write_text('base = "t.toml"\n[grid]\n"lr" = [1]\n[[variants]]\nname = "x"\n')
    with pytest.raises(SweepConfigError, match="exactly one"):
        load_sweep(p)
    p.write_text('base = "t.toml"\nsedes = [1]\n[[variants]]\nname = "x"\n')
    with pytest.raises(SweepConfigError, match="sedes"):
        load_sweep(p)
    with pytest.raises(SweepConfigError, match="appears twice"):
        expand(_cfg(variants=[{"name": "a"}, {"name": "a"}]))


def test_the_shipped_lacquer_sweep_matches_the_demo():
    from pathlib import Path

    from craftlora.demo.lacquer import VARIANTS

    examples = Path(__file__).resolve().parents[2] / "examples"
    cfg = load_sweep(examples / "sweep-lacquer.toml")
    vs = expand(cfg)
    assert {v.name: v.train for v in vs} == VARIANTS
    assert cfg.seeds == [0, 1, 2] and len({v.train_key for v in vs}) == 4
    from craftlora.train.config import load_train_config

    base = load_train_config(cfg.base)
    assert (base.lora.rank, base.lora.alpha, base.model) == (64, 64.0, "mini")
    assert base.loss.perceptual_weight == 0.0 and base.data.specular_alpha is None


def test_cli_names_the_unknown_key_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from craftlora.cli.main import app

    p = tmp_path / "s.toml"
    p.write_text('base = "t.toml"\n[grid]\n"optim.lr" = [1e-4]\n"loss.perceptual_wieght" = [0.3]\n')
    r = CliRunner().invoke(app, ["sweep", str(p), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "unknown key 'loss.perceptual_wieght'" in r.output and str(p) in r.output
    assert not (tmp_path / "o").exists()  # nothing started
