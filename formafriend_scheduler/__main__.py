"""`python -m formafriend_scheduler` runs the CLI."""

from formafriend_scheduler.cli.app import main

main()
