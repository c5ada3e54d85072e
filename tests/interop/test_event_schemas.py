"""Real flows through the real binary (SMTP in; submission out through a fake
smarthost that accepts some recipients and refuses others with 550; a failed and
a successful AUTH; a DENY rule; mail failing DMARC; an IMAP read), then every line of email.jsonl and audit.jsonl
validated against schemas/events, and the WorkMail Insights example queries
answered with jq (examples/insights/*.jq)."""

import imaplib
import json
import pathlib
import smtplib
import socketserver
import ssl
import subprocess
import threading
import time
from email.message import EmailMessage

import pytest

from conftest import client_for, new_org, start_daemon, stop_daemon

jsonschema = pytest.importorskip("jsonschema")

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas" / "events"
INSIGHTS = ROOT / "examples" / "insights"
PASSWORD = "Corr3ct-Horse-Battery"


class Smarthost(socketserver.StreamRequestHandler):
    """Just enough SMTP: refuses RCPT to local parts starting with `bounce`."""

    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 smarthost.test ESMTP")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 smarthost.test")
            elif verb == "RCPT":
                if "<bounce" in line.decode().lower():
                    self.reply("550 5.1.1 no such user here")
                else:
                    self.reply("250 2.1.5 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                while self.rfile.readline() not in (b".\r\n", b""):
                    pass
                self.reply("250 2.0.0 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


@pytest.fixture(scope="module")
def flows(tmp_path_factory):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Smarthost)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    daemon = start_daemon(
        tmp_path_factory.mktemp("schemas"),
        f'[smtp.relay]\nhost = "127.0.0.1"\nport = {server.server_address[1]}\ntls = "none"\n',
    )
    wm = client_for(daemon)
    org, domain = new_org(wm)
    addrs = []
    for name in ["alice", "bob"]:
        uid = wm.create_user(OrganizationId=org, Name=name, DisplayName=name, Password=PASSWORD)["UserId"]
        wm.register_to_work_mail(OrganizationId=org, EntityId=uid, Email=f"{name}@{domain}")
        addrs.append(f"{name}@{domain}")
    alice, bob = addrs
    ctx = ssl.create_default_context(cafile=daemon.ca)

    def msg(sender, to, subject):
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = sender, ", ".join(to), subject
        m.set_content("schema flows\n")
        return m

    # SMTP in (MX), from outside to both users.
    with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"]) as s:
        s.send_message(msg("carol@remote.test", [alice, bob], "inbound"))
    # Failed AUTH, then a successful one submitting to a local user, an accepted
    # remote one and a remote one the smarthost refuses.
    with smtplib.SMTP_SSL("localhost", daemon.ports["submissions"], context=ctx) as s:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login(alice, "Wrong-Passw0rd")
    with smtplib.SMTP_SSL("localhost", daemon.ports["submissions"], context=ctx) as s:
        s.login(alice, PASSWORD)
        s.send_message(msg(alice, [bob, "dave@remote.test", "bounce-erin@remote.test"], "outbound"))
    # A DENY rule refuses the next login (access_control record with access_granted false).
    wm.put_access_control_rule(
        OrganizationId=org, Name="deny-smtp", Effect="DENY", Description="schema test",
        IpRanges=["127.0.0.0/8"], Actions=["SMTP"],
    )
    with smtplib.SMTP_SSL("localhost", daemon.ports["submissions"], context=ctx) as s:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login(bob, PASSWORD)
    wm.delete_access_control_rule(OrganizationId=org, Name="deny-smtp")
    # A sender whose domain asks for quarantine and fails DMARC (conftest's static
    # DNS records): DMARC_POLICY_APPLIED.
    with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"]) as s:
        s.send_message(msg("eve@fail.test", [alice], "spoofed"))
    # An IMAP read: login, select, fetch a body (mailbox_access records).
    with imaplib.IMAP4_SSL("localhost", daemon.ports["imaps"], ssl_context=ctx) as m:
        m.login(bob, PASSWORD)
        m.select("INBOX")
        typ, _ = m.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK"
        m.logout()

    email_log = daemon.data_dir / "events" / "email.jsonl"
    wanted = {"OUTGOING_EMAIL_SENT", "OUTGOING_EMAIL_BOUNCED"}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        names = {json.loads(line)["event"]["eventName"] for line in email_log.read_text().splitlines()}
        if wanted <= names:
            break
        time.sleep(0.1)
    # Stopping flushes every sink, so both files are complete.
    stop_daemon(daemon)
    server.shutdown()
    server.server_close()
    yield daemon.data_dir / "events", alice, bob


def schema_for(record):
    if "traceId" in record:
        name = record.get("event", {}).get("eventName", "missing")
        return SCHEMAS / f"email-{name.lower().replace('_', '-')}.schema.json"
    return SCHEMAS / f"audit-{record.get('log_type', 'missing').replace('_', '-')}.schema.json"


def test_every_line_matches_its_schema(flows):
    events, _, _ = flows
    seen = set()
    for log in ["email.jsonl", "audit.jsonl"]:
        for n, line in enumerate((events / log).read_text().splitlines(), 1):
            record = json.loads(line)
            path = schema_for(record)
            assert path.exists(), f"{log}:{n}: no schema {path.name}"
            schema = json.loads(path.read_text())
            jsonschema.Draft202012Validator.check_schema(schema)
            jsonschema.validate(record, schema, cls=jsonschema.Draft202012Validator)
            seen.add(path.name)
    expected = {
        "email-organization-email-received.schema.json",
        "email-mailbox-email-delivered.schema.json",
        "email-outgoing-email-submitted.schema.json",
        "email-outgoing-email-sent.schema.json",
        "email-outgoing-email-bounced.schema.json",
        "email-dmarc-policy-applied.schema.json",
        "audit-authentication.schema.json",
        "audit-access-control.schema.json",
        "audit-mailbox-access.schema.json",
    }
    assert expected <= seen, expected - seen


def jq(*args, slurp=False):
    cmd = ["jq", "-c"] + (["-s"] if slurp else []) + list(args)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=30).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_insights_queries_with_jq(flows):
    events, alice, bob = flows
    log = str(events / "email.jsonl")
    # All mail from a sender: the inbound message from carol.
    received = jq("--arg", "sender", "CAROL@remote.test", "-f", str(INSIGHTS / "from-sender.jq"), log)
    assert len(received) == 1 and set(received[0]["recipients"]) == {alice, bob}
    # Find a message by traceId: its RECEIVED and two DELIVERED events.
    trace = jq("--arg", "trace", received[0]["traceId"], "-f", str(INSIGHTS / "trace.jq"), log)
    names = sorted(r["event"]["eventName"] for r in trace)
    assert names == ["MAILBOX_EMAIL_DELIVERED", "MAILBOX_EMAIL_DELIVERED", "ORGANIZATION_EMAIL_RECEIVED"]
    # Why did the recipient not get alice's mail? The smarthost refused it.
    why = jq("--arg", "a", alice, "--arg", "b", "bounce-erin@remote.test",
             "-f", str(INSIGHTS / "why-not-delivered.jq"), log, slurp=True)
    assert [w["eventName"] for w in why] == ["OUTGOING_EMAIL_BOUNCED"], why
    assert "550" in why[0]["reason"] or "no such user" in why[0]["reason"], why
    # And bob did get it: delivered on the receiving side (its own traceId).
    why = jq("--arg", "a", alice, "--arg", "b", bob, "-f", str(INSIGHTS / "why-not-delivered.jq"), log, slurp=True)
    assert [w["eventName"] for w in why] == ["MAILBOX_EMAIL_DELIVERED"], why
    sent = jq("--arg", "a", alice, "--arg", "b", "dave@remote.test",
              "-f", str(INSIGHTS / "why-not-delivered.jq"), log, slurp=True)
    assert [w["eventName"] for w in sent] == ["OUTGOING_EMAIL_SENT"], sent
