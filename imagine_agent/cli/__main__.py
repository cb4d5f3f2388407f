"""``python -m imagine_agent.cli``."""

from . import main

main()
