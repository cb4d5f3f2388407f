"""``python -m imagine_agent`` is the ``imagine-agent`` command."""

from .cli import main

main()
