"""A real SMTP server on loopback (aiosmtpd) that records what it receives
and can be told to refuse recipients (4xx once, 5xx always) or to stall."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    sender: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Recorder:
    received: list[Received] = field(default_factory=list)
    # recipient -> replies to give, one per attempt (then accept)
    scripted: dict[str, list[str]] = field(default_factory=dict)
    # recipient -> reply given every time
    always: dict[str, str] = field(default_factory=dict)
    # once this many messages arrived, hold every further DATA until released
    stall_after: int | None = None
    # a message to any of these recipients is held until released
    stall_for: set[str] = field(default_factory=set)
    # seconds to wait before answering the end of DATA (a slow, accepting server)
    reply_delay: float = 0.0
    # offer PIPELINING (RFC 2920), as Postfix and most relays do: the client then
    # sends MAIL, RCPT and DATA at once, and the next message's with a content
    pipelining: bool = True
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        with self.lock:
            if address in self.always:
                return self.always[address]
            replies = self.scripted.get(address)
            if replies:
                return replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            stall = self.stall_after is not None and len(self.received) >= self.stall_after
            stall = stall or bool(self.stall_for & set(envelope.rcpt_tos))
        if stall:
            self.stalled.set()
            while not self.release.is_set():  # yield: other connections go on meanwhile
                await asyncio.sleep(0.05)
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
            )
        if self.reply_delay:
            await asyncio.sleep(self.reply_delay)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpServer:
    def __init__(self) -> None:
        self.recorder = Recorder()
        self.port = free_port()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?security=none"

    @property
    def received(self) -> list[Received]:
        with self.recorder.lock:
            return list(self.recorder.received)

    def recipients(self) -> Counter[str]:
        return Counter(r for message in self.received for r in message.recipients)

    def start(self) -> None:
        self._controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        self.recorder.release.set()
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def refuse_once(self, recipient: str, reply: str = "451 4.7.1 Try again later") -> None:
        with self.recorder.lock:
            self.recorder.scripted.setdefault(recipient, []).append(reply)

    def refuse_always(self, recipient: str, reply: str = "550 5.1.1 No such user") -> None:
        with self.recorder.lock:
            self.recorder.always[recipient] = reply
