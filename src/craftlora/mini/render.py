"""Write a mini-kiln dataset: PNGs, labels.csv, one structured annotation JSON per image.

The default dataset follows the long-tailed joint law of ``kiln.default_counts``; a combos
file (CSV ``dynasty,kiln,glaze,type,count``) renders exactly the combinations asked for.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np

from craftlora.data.atomic import atomic_write_bytes, atomic_write_json
from craftlora.mini import canvas
from craftlora.mini.annotate import annotation
from craftlora.mini.kiln import ATTRIBUTES, ComboError, check_values, default_counts, is_valid
from craftlora.mini.vessel import render_scene
from craftlora.runtime.workers import map_chunks

COMBO_COLUMNS = (*ATTRIBUTES, "count")
LABEL_COLUMNS = ("file", *ATTRIBUTES)


def read_combos(path: Path, *, allow_invalid: bool = False) -> list[tuple[dict[str, str], int]]:
    """Parse a combos CSV (header ``dynasty,kiln,glaze,type,count``); every fault is reported.

    Raises ComboError naming the file, the line and the reason for each bad row.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ComboError(f"{path}: cannot read combos file: {e}") from e
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COMBO_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ComboError(f"{path}: header must have columns {','.join(COMBO_COLUMNS)}; "
                         f"missing {','.join(missing)}")
    out, errors = [], []
    for row in reader:
        line = reader.line_num
        combo = {a: (row.get(a) or "").strip() for a in ATTRIBUTES}
        try:
            check_values(combo)
            count = int((row.get("count") or "").strip())
            if count < 0:
                raise ValueError
        except ComboError as e:
            errors.append(f"{path}:{line}: {e}")
            continue
        except ValueError:
            errors.append(f"{path}:{line}: count must be a whole number >= 0, got {row['count']!r}")
            continue
        if not allow_invalid and not is_valid(combo):
            errors.append(f"{path}:{line}: {combo} breaks the historical constraints "
                          "(use allow_invalid / --allow-invalid to render it anyway)")
            continue
        out.append((combo, count))
    if errors:
        raise ComboError("\n".join(errors))
    return out


def _file_name(i: int) -> str:
    return f"mk{i:05d}.png"


def _render_chunk(jobs: Sequence[tuple[int, dict[str, str]]], out: Path, seed: int, size: int):
    for i, combo in jobs:
        rng = np.random.default_rng([seed, i])
        img, _, facts = render_scene(combo, rng, size)
        name = _file_name(i)
        canvas.write_file(out / name, canvas.png_bytes(img))
        ann = json.dumps(annotation(combo, facts), indent=2) + "\n"
        canvas.write_file(out / (Path(name).stem + ".json"), ann.encode())
    return [None] * len(jobs)


def render_kiln(
    out: Path,
    *,
    n: int = 6000,
    seed: int = 0,
    size: int = 64,
    combos: list[tuple[dict[str, str], int]] | None = None,
    workers: int | None = None,
    progress: bool = False,
    allow_invalid: bool = False,
) -> Path:
    """Render a mini-kiln dataset into ``out``; returns the path of its labels.csv.

    Without ``combos`` the ``n`` images follow the default long-tailed law, shuffled by ``seed``;
    with ``combos`` exactly those (combination, count) pairs are rendered in the given order and
    ``n`` is ignored. The same arguments always give byte-identical files.
    """
    if size < 16 or size % 2:
        raise ValueError("size must be an even number >= 16")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if combos is None:
        plan = [c for c, k in default_counts(n) for _ in range(k)]
        order = np.random.default_rng(seed).permutation(len(plan))
        plan = [plan[j] for j in order]
    else:
        for combo, count in combos:
            check_values(combo)
            if count < 0:
                raise ValueError(f"negative count for {combo}")
            if not allow_invalid and not is_valid(combo):
                raise ComboError(f"{combo} breaks the historical constraints")
        plan = [dict(c) for c, k in combos for _ in range(k)]
    jobs = list(enumerate(plan))
    job = partial(_render_chunk, out=out, seed=seed, size=size)
    map_chunks(job, jobs, workers=workers, desc="mini-kiln", progress=progress)

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(LABEL_COLUMNS)
    for i, combo in jobs:
        w.writerow([_file_name(i), *(combo[a] for a in ATTRIBUTES)])
    labels = out / "labels.csv"
    atomic_write_bytes(labels, buf.getvalue().encode())
    atomic_write_json(out / "world.json", {
        "world": "mini-kiln", "seed": seed, "size": size, "images": len(jobs),
        "source": "default" if combos is None else "combos",
    })
    return labels
