"""Real SMTP clients against mailgate over TLS with the daemon's CA verified:
Python's smtplib and swaks, on the MX, submission (STARTTLS) and submissions
(implicit TLS) listeners; then the access-control rules end to end."""

import json
import smtplib
import ssl
import subprocess
import time
import uuid
from email.message import EmailMessage

import pytest
from botocore.exceptions import ClientError

PASSWORD = "Corr3ct-Horse-Battery"


def new_user(wm, org, domain):
    name = f"u{uuid.uuid4().hex[:8]}"
    uid = wm.create_user(OrganizationId=org, Name=name, DisplayName=name, Password=PASSWORD)["UserId"]
    wm.register_to_work_mail(OrganizationId=org, EntityId=uid, Email=f"{name}@{domain}")
    return uid, f"{name}@{domain}"


def mailbox_size(wm, org, uid):
    return wm.get_mailbox_details(OrganizationId=org, UserId=uid)["MailboxSize"]


def delivered_to(mailgate, address, subject, timeout=5.0):
    """Waits for the MAILBOX_EMAIL_DELIVERED event of `subject` to `address`."""
    path = mailgate.data_dir / "events" / "email.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        traces = set()
        records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        for r in records:
            if r["event"].get("subject") == subject:
                traces.add(r["traceId"])
        for r in records:
            e = r["event"]
            if r["traceId"] in traces and e["eventName"] == "MAILBOX_EMAIL_DELIVERED" and e["recipient"] == address:
                return True
        time.sleep(0.05)
    return False


def message(sender, to, subject):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    m.set_content("Hello from an interop test.\n")
    return m


def tls_context(mailgate):
    return ssl.create_default_context(cafile=mailgate.ca)


def test_smtplib_submissions_implicit_tls_auth_plain(workmail, mailgate, org):
    org_id, domain = org
    alice, alice_addr = new_user(workmail, org_id, domain)
    bob, bob_addr = new_user(workmail, org_id, domain)
    subject = f"implicit {uuid.uuid4().hex}"
    with smtplib.SMTP_SSL("localhost", mailgate.ports["submissions"], context=tls_context(mailgate)) as s:
        s.login(alice_addr, PASSWORD)
        refused = s.send_message(message(alice_addr, bob_addr, subject))
        assert refused == {}
    assert delivered_to(mailgate, bob_addr, subject)
    assert mailbox_size(workmail, org_id, bob) > 0
    assert mailbox_size(workmail, org_id, alice) > 0, "the Sent Items copy counts"


def test_smtplib_submission_requires_starttls_then_auth_login(workmail, mailgate, org):
    org_id, domain = org
    _, alice_addr = new_user(workmail, org_id, domain)
    _, bob_addr = new_user(workmail, org_id, domain)
    with smtplib.SMTP("localhost", mailgate.ports["submission"]) as s:
        s.ehlo()
        assert not s.has_extn("auth"), "no AUTH before TLS"
        code, _ = s.mail(alice_addr)
        assert code == 530
        s.rset()
        s.starttls(context=tls_context(mailgate))
        s.ehlo()
        assert "LOGIN" in s.esmtp_features["auth"]
        s.user, s.password = alice_addr, PASSWORD
        code, _ = s.auth("LOGIN", s.auth_login)
        assert code == 235
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.send_message(message(bob_addr, bob_addr, "forged"), from_addr=bob_addr)
        assert e.value.smtp_code == 550
        subject = f"starttls {uuid.uuid4().hex}"
        s.send_message(message(alice_addr, bob_addr, subject))
    assert delivered_to(mailgate, bob_addr, subject)


def test_smtplib_mx_delivers_and_refuses_relaying(workmail, mailgate, org):
    org_id, domain = org
    _, bob_addr = new_user(workmail, org_id, domain)
    subject = f"mx {uuid.uuid4().hex}"
    with smtplib.SMTP("localhost", mailgate.ports["smtp"]) as s:
        s.starttls(context=tls_context(mailgate))
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            s.sendmail("x@remote.test", ["someone@elsewhere.test"], b"Subject: relay\r\n\r\nno\r\n")
        assert e.value.recipients["someone@elsewhere.test"][0] == 550
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("x@remote.test", [f"nobody@{domain}"], b"Subject: unknown\r\n\r\nno\r\n")
        s.sendmail("x@remote.test", [bob_addr], f"Subject: {subject}\r\n\r\nhello\r\n".encode())
    assert delivered_to(mailgate, bob_addr, subject)


@pytest.mark.parametrize(
    "listener,tls_flag,auth",
    [("submission", "--tls", "LOGIN"), ("submissions", "--tls-on-connect", "PLAIN")],
)
def test_swaks_over_tls(workmail, mailgate, org, listener, tls_flag, auth):
    org_id, domain = org
    _, alice_addr = new_user(workmail, org_id, domain)
    _, bob_addr = new_user(workmail, org_id, domain)
    subject = f"swaks {uuid.uuid4().hex}"
    out = subprocess.run(
        [
            "swaks", "--server", "localhost", "--port", str(mailgate.ports[listener]), tls_flag,
            "--tls-verify", "--tls-ca-path", mailgate.ca,
            "--auth", auth, "--auth-user", alice_addr, "--auth-password", PASSWORD,
            "--from", alice_addr, "--to", bob_addr, "--header", f"Subject: {subject}",
        ],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "235 2.7.0" in out.stdout and "250 2.0.0 Ok: queued as" in out.stdout, out.stdout
    assert delivered_to(mailgate, bob_addr, subject)


def test_swaks_wrong_password_is_535(workmail, mailgate, org):
    org_id, domain = org
    _, alice_addr = new_user(workmail, org_id, domain)
    out = subprocess.run(
        [
            "swaks", "--server", "localhost", "--port", str(mailgate.ports["submissions"]), "--tls-on-connect",
            "--tls-verify", "--tls-ca-path", mailgate.ca,
            "--auth", "PLAIN", "--auth-user", alice_addr, "--auth-password", "Wrong-Passw0rd",
            "--from", alice_addr, "--to", alice_addr,
        ],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode != 0
    assert "535 5.7.8" in out.stdout, out.stdout


def deny_smtp_rule(workmail, org_id):
    workmail.put_access_control_rule(
        OrganizationId=org_id, Name="no-smtp-loopback", Effect="DENY", Description="interop",
        IpRanges=["127.0.0.0/8"], Actions=["SMTP"],
    )


def test_a_deny_rule_blocks_smtp_auth_and_live_sessions_and_deleting_it_restores(workmail, mailgate, org):
    org_id, domain = org
    uid, alice_addr = new_user(workmail, org_id, domain)
    ctx = tls_context(mailgate)
    live = smtplib.SMTP_SSL("localhost", mailgate.ports["submissions"], context=ctx)
    live.login(alice_addr, PASSWORD)

    deny_smtp_rule(workmail, org_id)
    # The admin API still answers: rules do not govern it.
    effect = workmail.get_access_control_effect(OrganizationId=org_id, IpAddress="127.0.0.1", Action="SMTP", UserId=uid)
    assert effect["Effect"] == "DENY" and effect["MatchedRules"] == ["default", "no-smtp-loopback"]
    with smtplib.SMTP_SSL("localhost", mailgate.ports["submissions"], context=ctx) as s:
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login(alice_addr, PASSWORD)
        assert e.value.smtp_code == 535, "same answer as a wrong password"
    # The session that authenticated before the rule is refused at its next MAIL FROM.
    code, text = live.mail(alice_addr)
    assert code == 421, text
    live.close()

    workmail.delete_access_control_rule(OrganizationId=org_id, Name="no-smtp-loopback")
    t0 = time.monotonic()
    with smtplib.SMTP_SSL("localhost", mailgate.ports["submissions"], context=ctx) as s:
        s.login(alice_addr, PASSWORD)
    assert time.monotonic() - t0 < 1.0, "restored within one second"

    audit = [json.loads(line) for line in (mailgate.data_dir / "events" / "audit.jsonl").read_text().splitlines()]
    denied = [a for a in audit if a["log_type"] == "access_control" and a["user_id"] == uid and not a["access_granted"]]
    assert denied and all(a["rule_id"] == "no-smtp-loopback" and a["protocol"] == "SMTP" for a in denied)
    failed = [a for a in audit if a["log_type"] == "authentication" and a["user_id"] == uid and not a["auth_successful"]]
    assert any(a["auth_failed_reason"] == "denied by an access control rule" for a in failed)


def events_of(mailgate, subject, timeout=5.0):
    """The email events of the flow whose ORGANIZATION_EMAIL_RECEIVED has `subject`."""
    path = mailgate.data_dir / "events" / "email.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        traces = {r["traceId"] for r in records if r["event"].get("subject") == subject}
        flow = [r["event"] for r in records if r["traceId"] in traces]
        if any(e["eventName"] == "MAILBOX_EMAIL_DELIVERED" for e in flow):
            return flow
        time.sleep(0.05)
    return []


def test_sender_checks_report_verdicts_and_dmarc_quarantine_files_in_junk(workmail, mailgate, org):
    org_id, domain = org
    _, bob_addr = new_user(workmail, org_id, domain)
    assert workmail.describe_inbound_dmarc_settings(OrganizationId=org_id)["Enforced"] is True
    good, bad = f"good {uuid.uuid4().hex}", f"bad {uuid.uuid4().hex}"
    with smtplib.SMTP("localhost", mailgate.ports["smtp"]) as s:
        s.starttls(context=tls_context(mailgate))
        s.send_message(message("ann@pass.test", bob_addr, good))
        s.send_message(message("eve@fail.test", bob_addr, bad))
    ok = events_of(mailgate, good)
    received = next(e for e in ok if e["eventName"] == "ORGANIZATION_EMAIL_RECEIVED")
    assert (received["spfVerdict"], received["dmarcVerdict"], received["dkimVerdict"]) == ("PASS", "PASS", "GRAY")
    assert "dmarcPolicy" not in received
    assert next(e for e in ok if e["eventName"] == "MAILBOX_EMAIL_DELIVERED")["folder"] == "Inbox"
    spoofed = events_of(mailgate, bad)
    received = next(e for e in spoofed if e["eventName"] == "ORGANIZATION_EMAIL_RECEIVED")
    assert (received["spfVerdict"], received["dmarcVerdict"], received["dmarcPolicy"]) == ("FAIL", "FAIL", "QUARANTINE")
    applied = next(e for e in spoofed if e["eventName"] == "DMARC_POLICY_APPLIED")
    assert applied["policy"] == "QUARANTINE" and applied["recipients"] == [bob_addr]
    assert next(e for e in spoofed if e["eventName"] == "MAILBOX_EMAIL_DELIVERED")["folder"] == "Junk"

    # Suspended enforcement: delivered to the Inbox, the verdict still reported.
    workmail.put_inbound_dmarc_settings(OrganizationId=org_id, Enforced=False)
    try:
        again = f"bad again {uuid.uuid4().hex}"
        with smtplib.SMTP("localhost", mailgate.ports["smtp"]) as s:
            s.starttls(context=tls_context(mailgate))
            s.send_message(message("eve@fail.test", bob_addr, again))
        flow = events_of(mailgate, again)
        assert not any(e["eventName"] == "DMARC_POLICY_APPLIED" for e in flow)
        assert next(e for e in flow if e["eventName"] == "MAILBOX_EMAIL_DELIVERED")["folder"] == "Inbox"
    finally:
        workmail.put_inbound_dmarc_settings(OrganizationId=org_id, Enforced=True)
