"""Delivery outcomes against a real SMTP server, failover and the circuit breaker."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from formafriend_scheduler.mail.compose import ComposedEmail
from formafriend_scheduler.mail.transports import (
    CircuitBreaker,
    Delivery,
    FailoverTransport,
    FileTransport,
    Outcome,
    SmtpEndpoint,
    SmtpTransport,
)
from tests.smtpserver import SmtpServer, free_port


def message(to: str = "bob@x.org") -> ComposedEmail:
    msg = EmailMessage()
    msg["From"] = "Form-a-Friend <noreply@form-a-friend.com>"
    msg["To"] = to
    msg["Subject"] = "Test"
    msg["Message-ID"] = "<abc.invitation@form-a-friend.com>"
    msg.set_content("hello")
    return ComposedEmail(
        "noreply@form-a-friend.com", to, "<abc.invitation@form-a-friend.com>", msg.as_bytes()
    )


def transport(server: SmtpServer | None = None, port: int | None = None) -> SmtpTransport:
    url = server.url if server else f"smtp://127.0.0.1:{port}?security=none"
    return SmtpTransport(SmtpEndpoint.parse(url), attempts=3, first_wait=0.01, timeout=5)


def test_endpoints_parse_security_ports_and_credentials() -> None:
    plain = SmtpEndpoint.parse("smtp://mail.example.org?security=none")
    assert (plain.host, plain.port, plain.security) == ("mail.example.org", 25, "none")
    starttls = SmtpEndpoint.parse("smtp://u%40x:p%3Aw@mail.example.org:2525")
    assert (starttls.port, starttls.security, starttls.username, starttls.password) == (
        2525,
        "starttls",
        "u@x",
        "p:w",
    )
    assert SmtpEndpoint.parse("smtps://mail.example.org").port == 465


def test_one_connection_is_reused_for_many_messages(smtp_server: SmtpServer) -> None:
    smtp = transport(smtp_server)
    first = smtp._connect()
    for i in range(3):
        assert smtp.deliver(message(f"r{i}@x.org")).outcome is Outcome.SENT
    assert smtp._connect() is first
    assert len(smtp_server.received) == 3
    smtp.close()


def test_a_dropped_connection_is_reopened(smtp_server: SmtpServer) -> None:
    smtp = transport(smtp_server)
    assert smtp.deliver(message("bob@x.org")).outcome is Outcome.SENT
    smtp._connect().sock.close()  # the server or a firewall dropped it
    assert smtp.deliver(message("bob@x.org")).outcome is Outcome.SENT
    assert len(smtp_server.received) == 2


def test_4xx_is_retried_5xx_bounces(smtp_server: SmtpServer) -> None:
    smtp_server.refuse_once("grey@x.org", "450 4.2.0 Mailbox busy")
    smtp_server.refuse_always("nobody@x.org", "550 5.1.1 User unknown")
    smtp_server.refuse_always("full@x.org", "452 4.2.2 Mailbox full")
    smtp = transport(smtp_server)

    assert smtp.deliver(message("grey@x.org")).outcome is Outcome.SENT
    bounced = smtp.deliver(message("nobody@x.org"))
    assert (bounced.outcome, bounced.server_problem) == (Outcome.BOUNCED, False)
    assert "550 5.1.1 User unknown" in bounced.detail
    full = smtp.deliver(message("full@x.org"))
    assert (full.outcome, full.server_problem) == (Outcome.FAILED, False)


def test_a_server_that_is_down_fails_as_a_server_problem() -> None:
    delivery = transport(port=free_port()).deliver(message("bob@x.org"))
    assert delivery.outcome is Outcome.FAILED
    assert delivery.server_problem
    assert "Connection refused" in delivery.detail or "ConnectionRefused" in delivery.detail


def test_the_fallback_takes_over_when_the_primary_server_fails(smtp_server: SmtpServer) -> None:
    failover = FailoverTransport(transport(port=free_port()), transport(smtp_server))
    first = failover.deliver(message("bob@x.org"))
    second = failover.deliver(message("carol@x.org"))
    assert first.outcome is second.outcome is Outcome.SENT
    assert first.provider == f"smtp:127.0.0.1:{smtp_server.port}"
    assert smtp_server.recipients() == {"bob@x.org": 1, "carol@x.org": 1}


def test_a_refused_recipient_does_not_switch_to_the_fallback(smtp_server: SmtpServer) -> None:
    smtp_server.refuse_always("nobody@x.org")
    other = SmtpServer()
    other.start()
    try:
        failover = FailoverTransport(transport(smtp_server), transport(other))
        assert failover.deliver(message("nobody@x.org")).outcome is Outcome.BOUNCED
        assert failover.deliver(message("bob@x.org")).provider == transport(smtp_server).name
        assert other.received == []
    finally:
        other.stop()


class Dead:
    name = "dead"

    def __init__(self) -> None:
        self.calls = 0

    def deliver(self, email: ComposedEmail, then: ComposedEmail | None = None) -> Delivery:
        self.calls += 1
        return Delivery(Outcome.FAILED, self.name, "connection refused", server_problem=True)

    def close(self) -> None:
        return None


def test_the_circuit_opens_after_three_server_failures_and_probes_after_the_cooldown() -> None:
    now = [0.0]
    dead = Dead()
    breaker = CircuitBreaker(dead, threshold=3, cooldown=30, monotonic=lambda: now[0])
    for _ in range(10):
        assert breaker.deliver(message("bob@x.org")).outcome is Outcome.FAILED
    assert dead.calls == 3  # the other seven failed fast
    now[0] = 31.0
    breaker.deliver(message("bob@x.org"))
    assert dead.calls == 4  # one probe after the cooldown


def test_the_file_transport_writes_one_eml_per_message_id(tmp_path: Path) -> None:
    files = FileTransport(tmp_path / "outbox")
    assert files.deliver(message("bob@x.org")).outcome is Outcome.SENT
    assert files.deliver(message("bob@x.org")).outcome is Outcome.SENT  # the same message again
    written = list((tmp_path / "outbox").iterdir())
    assert [p.name for p in written] == ["abc.invitation_form-a-friend.com.eml"]
    assert b"Subject: Test" in written[0].read_bytes()


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("550 5.1.1 User unknown", Outcome.BOUNCED),
        ("550 No such user here", Outcome.BOUNCED),
        ("553 5.1.3 Bad address syntax", Outcome.BOUNCED),
        ("550 5.2.1 Mailbox disabled", Outcome.BOUNCED),
        ("552 5.2.2 Mailbox full", Outcome.FAILED),
        ("554 5.7.1 Relay access denied", Outcome.FAILED),
        ("550 5.7.1 Client host blocked", Outcome.FAILED),
        ("530 5.7.0 Authentication required", Outcome.FAILED),
        ("554 Transaction failed", Outcome.FAILED),
    ],
)
def test_only_a_missing_mailbox_is_a_hard_bounce_and_no_refusal_blames_the_server(
    smtp_server: SmtpServer, reply: str, outcome: Outcome
) -> None:
    smtp_server.refuse_always("r@x.org", reply)
    delivery = transport(smtp_server).deliver(message("r@x.org"))
    assert (delivery.outcome, delivery.recipient_refused) == (outcome, True)
    assert not delivery.server_problem  # one recipient's refusal says nothing of the others


def test_policy_refusals_in_a_row_never_open_the_circuit(smtp_server: SmtpServer) -> None:
    """Given a server that refuses five recipients in a row by policy (5.7.1),
    the circuit stays closed and the next recipient's message goes out."""
    blocked = [f"b{i}@x.org" for i in range(5)]
    for address in blocked:
        smtp_server.refuse_always(address, "554 5.7.1 Message refused by policy")
    breaker = CircuitBreaker(transport(smtp_server), threshold=3)

    refused = [breaker.deliver(message(address)) for address in blocked]
    after = breaker.deliver(message("bob@x.org"))

    assert [d.outcome for d in refused] == [Outcome.FAILED] * 5
    assert after.outcome is Outcome.SENT
    assert smtp_server.recipients() == {"bob@x.org": 1}


def test_a_421_to_a_recipient_is_the_server_closing_the_session(smtp_server: SmtpServer) -> None:
    smtp_server.refuse_always("r@x.org", "421 4.3.2 Service shutting down")
    delivery = transport(smtp_server).deliver(message("r@x.org"))
    assert (delivery.outcome, delivery.server_problem) == (Outcome.FAILED, True)


def test_a_slow_final_reply_is_awaited_not_sent_again(smtp_server: SmtpServer) -> None:
    """RFC 5321 gives the reply to the end of DATA 10 minutes; commands keep
    their short timeout. Given a server that takes 2 s to accept a message,
    with a 1 s command timeout it is delivered once."""
    smtp_server.recorder.reply_delay = 2.0
    smtp = SmtpTransport(
        SmtpEndpoint.parse(smtp_server.url), timeout=1, final_reply_timeout=10, first_wait=0.01
    )
    assert smtp.deliver(message("bob@x.org")).outcome is Outcome.SENT
    assert smtp_server.recipients() == {"bob@x.org": 1}


def test_no_final_reply_at_all_fails_without_sending_again(smtp_server: SmtpServer) -> None:
    smtp_server.recorder.reply_delay = 3.0
    smtp = SmtpTransport(
        SmtpEndpoint.parse(smtp_server.url), timeout=1, final_reply_timeout=1, first_wait=0.01
    )
    delivery = smtp.deliver(message("bob@x.org"))
    assert (delivery.outcome, delivery.server_problem) == (Outcome.FAILED, True)
    assert "may have been delivered" in delivery.detail
    assert smtp_server.recipients() == {"bob@x.org": 1}  # the server has it once: not resent


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-by-one", "pipelined"])
def test_refusals_reset_the_transaction_and_the_next_message_goes_out(
    smtp_server: SmtpServer, pipelining: bool
) -> None:
    """With PIPELINING, MAIL, RCPT and DATA go in one write; a refused
    recipient or sender then gets its transaction reset, and the same
    connection carries the next message."""
    smtp_server.recorder.pipelining = pipelining
    smtp_server.refuse_always("nobody@x.org", "550 5.1.1 User unknown")
    smtp = transport(smtp_server)

    outcomes = [smtp.deliver(message(to)).outcome for to in ("a@x.org", "nobody@x.org", "b@x.org")]

    assert outcomes == [Outcome.SENT, Outcome.BOUNCED, Outcome.SENT]
    assert smtp_server.recipients() == {"a@x.org": 1, "b@x.org": 1}
    connection = smtp._connect()
    assert connection.has_extn("pipelining") is pipelining
    smtp.close()


def counting_writes(smtp: SmtpTransport) -> list[bytes]:
    """Every write the transport's connection makes after its EHLO."""
    connection = smtp._connect()
    connection.ehlo_or_helo_if_needed()
    writes: list[bytes] = []
    send = connection.send

    def counted(data: str | bytes) -> None:
        writes.append(data.encode() if isinstance(data, str) else data)
        send(data)

    connection.send = counted  # type: ignore[method-assign]
    return writes


def deliver_in_order(smtp: SmtpTransport, recipients: list[str]) -> list[Outcome]:
    """As the deliverer sends a chunk: each message with the next one named."""
    emails = [message(to) for to in recipients]
    return [
        smtp.deliver(email, emails[i + 1] if i + 1 < len(emails) else None).outcome
        for i, email in enumerate(emails)
    ]


def test_with_pipelining_the_next_message_opens_with_this_ones_content(
    smtp_server: SmtpServer,
) -> None:
    """One write per message (its content, then the next one's MAIL, RCPT and
    DATA) instead of two; each message arrives once."""
    smtp = transport(smtp_server)
    writes = counting_writes(smtp)

    outcomes = deliver_in_order(smtp, ["a@x.org", "b@x.org", "c@x.org"])

    assert outcomes == [Outcome.SENT] * 3
    assert smtp_server.recipients() == {"a@x.org": 1, "b@x.org": 1, "c@x.org": 1}
    assert len(writes) == 4  # a's envelope; a + b's envelope; b + c's envelope; c
    assert writes[1].endswith(b"\r\n.\r\nMAIL FROM:<noreply@form-a-friend.com>\r\n"
                              b"RCPT TO:<b@x.org>\r\nDATA\r\n")  # fmt: skip
    smtp.close()


def test_a_message_opened_ahead_but_not_sent_next_is_never_delivered(
    smtp_server: SmtpServer,
) -> None:
    smtp = transport(smtp_server)

    assert smtp.deliver(message("a@x.org"), then=message("skipped@x.org")).outcome is Outcome.SENT
    assert smtp.deliver(message("c@x.org"), then=message("closed@x.org")).outcome is Outcome.SENT
    smtp.close()  # in the middle of closed@x.org's DATA: the connection is dropped

    assert smtp_server.recipients() == {"a@x.org": 1, "c@x.org": 1}


def test_a_recipient_refused_ahead_is_reported_on_its_own_turn(smtp_server: SmtpServer) -> None:
    smtp_server.refuse_always("nobody@x.org", "550 5.1.1 User unknown")
    smtp_server.refuse_once("grey@x.org", "450 4.2.0 Mailbox busy")
    smtp = transport(smtp_server)

    outcomes = deliver_in_order(smtp, ["a@x.org", "nobody@x.org", "grey@x.org", "b@x.org"])

    assert outcomes == [Outcome.SENT, Outcome.BOUNCED, Outcome.SENT, Outcome.SENT]
    assert smtp_server.recipients() == {"a@x.org": 1, "grey@x.org": 1, "b@x.org": 1}
    smtp.close()


def test_a_failure_after_a_message_opened_ahead_retries_on_a_new_connection(
    smtp_server: SmtpServer,
) -> None:
    """The connection drops with b's transaction open: b goes out once, on a
    new connection, and nothing of it arrived before."""
    smtp = transport(smtp_server)
    assert smtp.deliver(message("a@x.org"), then=message("b@x.org")).outcome is Outcome.SENT
    assert smtp._connection is not None and smtp._connection.sock is not None
    smtp._connection.sock.close()  # the server or a firewall dropped it

    assert smtp.deliver(message("b@x.org")).outcome is Outcome.SENT
    assert smtp_server.recipients() == {"a@x.org": 1, "b@x.org": 1}
    smtp.close()


def test_without_pipelining_the_next_message_waits_for_its_turn(smtp_server: SmtpServer) -> None:
    smtp_server.recorder.pipelining = False
    smtp = transport(smtp_server)
    writes = counting_writes(smtp)

    assert deliver_in_order(smtp, ["a@x.org", "b@x.org"]) == [Outcome.SENT] * 2

    assert len(writes) == 8  # MAIL, RCPT, DATA and the content, each message alone
    assert smtp_server.recipients() == {"a@x.org": 1, "b@x.org": 1}
    smtp.close()
