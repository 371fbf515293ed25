"""Entry point of the ``craftlora`` console script: import every command module, run the app."""

from __future__ import annotations

from craftlora.cli import (  # noqa: F401  (each module registers its commands)
    character,
    classify,
    compare,
    data,
    demo,
    demo_character,
    demo_lacquer,
    demo_style,
    experiment,
    generate,
    lora,
    metrics,
    mini,
    mini_glossy,
    qc,
    review,
    specular,
    studio,
    style,
    sweep,
    train,
    weights,
    workspace,
)
from craftlora.cli.app import app


def main() -> None:
    app()


if __name__ == "__main__":
    main()
