"""The command line: Typer sub-apps, output (rich or JSON), exit codes.

The only package that knows Typer; everything below it raises SchedulerError
subclasses, which `state.handle_errors` turns into exit codes.
"""
