"""``python -m api.cli``: the ghost-engine command, as its entry point runs it."""

from api.cli import main

main()
