"""``python -m pipeline.cli`` = ``songnodes``."""

from pipeline.cli import main

main()
