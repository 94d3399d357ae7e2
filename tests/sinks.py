"""An event sink that keeps what it receives, for assertions."""

from __future__ import annotations

from formafriend_scheduler.hooks.events import Event


class CollectingSink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        self.events.append(event)

    @property
    def names(self) -> list[str]:
        return [event.name for event in self.events]
