"""Entry point of the ``craftlora`` console script: import every command module, run the app."""

from __future__ import annotations

from craftlora.cli import workspace  # noqa: F401  (registers commands)
from craftlora.cli.app import app


def main() -> None:
    app()


if __name__ == "__main__":
    main()
