"""`python -m papertide` runs the `papertide` command."""

from papertide.cli import main

main()
