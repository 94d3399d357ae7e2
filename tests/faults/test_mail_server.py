"""Every class of SMTP reply in one run, a mail server that goes away, and one
that answers slowly: the right outcome for each message, and none sent twice."""

from __future__ import annotations

import pytest

from tests.faults.harness import Mailing


def test_each_reply_class_has_its_outcome_and_nothing_goes_twice(mailing: Mailing) -> None:
    smtp, e = mailing.smtp, mailing.emails
    smtp.refuse_once(e[0], "451 4.7.1 Greylisted, try again")  # retried at once: sent
    smtp.refuse_once(e[1], "421 4.3.2 Service shutting down")  # the session: retried, sent
    smtp.refuse_always(e[2], "550 5.1.1 User unknown")  # the mailbox: bounced
    for address in e[3:7]:  # policy, four in a row: those fail, the others go on
        smtp.refuse_always(address, "554 5.7.1 Message refused by policy")
    smtp.refuse_always(e[7], "552 5.2.2 Mailbox full")  # fails, retried next run
    smtp.refuse_always(e[8], "452 4.2.2 Mailbox full")  # 4xx every time: fails

    assert mailing.run() == 3  # 7 of 120 failed or bounced: over the 5 % threshold
    record = mailing.records()[0]
    assert record["stats"]["sentInvitations"] == 113
    assert record["stats"]["bouncedInvitations"] == 1
    assert record["stats"]["failedInvitations"] == 6
    failed = set(e[3:9])
    mailing.assert_exactly_once(unsent=failed | {e[2]})

    assert mailing.run() == 3  # the failed ones are tried again; nothing else is sent
    mailing.assert_exactly_once(unsent=failed | {e[2]})


def test_a_mail_server_that_is_down_fails_the_run_and_the_next_one_sends_everything(
    mailing: Mailing,
) -> None:
    mailing.smtp.stop()
    assert mailing.run() == 1
    assert mailing.store.db["invitations"].count_documents({"status": "queued"}) == 120

    mailing.smtp.start()
    assert mailing.run() == 0
    mailing.assert_exactly_once()


@pytest.mark.slow
def test_a_slow_final_reply_is_awaited_and_the_message_goes_once(mailing: Mailing) -> None:
    mailing.smtp.recorder.reply_delay = 35  # past the 30 s command timeout
    # (a batch may take 2 minutes here: past that the pool kills it and retries it)
    run = mailing.start(SCHEDULER_WORKER_TIMEOUT="120000")
    mailing.wait_for_messages(1)
    mailing.smtp.recorder.reply_delay = 0.02
    assert run.wait(timeout=300) == 0
    mailing.assert_exactly_once()
