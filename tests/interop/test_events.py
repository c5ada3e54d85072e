"""Event sinks and metrics against the real binary: a filtered file sink, an HTTP
sink whose receiver (a small Python server) goes away during SMTP traffic and
comes back, and the Prometheus page on the metrics listener."""

import concurrent.futures
import http.server
import json
import smtplib
import ssl
import threading
import time
import urllib.request
import uuid
from email.message import EmailMessage

import pytest

from conftest import client_for, new_org, start_daemon, stop_daemon

PASSWORD = "Corr3ct-Horse-Battery"


class Receiver:
    """An HTTP server keeping every JSON line POSTed to it; stop() and start()
    again on the same port simulate an outage."""

    def __init__(self):
        self.lines = []
        self.lock = threading.Lock()
        self.port = 0
        self.server = None

    def start(self):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.headers["Content-Type"] == "application/x-ndjson"
                with outer.lock:
                    outer.lines.extend(body.decode().splitlines())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def ids(self):
        with self.lock:
            records = [json.loads(line) for line in self.lines]
        return [r.get("eventId") or r.get("event_id") for r in records]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    receiver = Receiver()
    receiver.start()
    extra = f"""
[events]
email_log = "events/email.jsonl"
audit_log = "events/audit.jsonl"

[[events.sinks]]
name = "siem"
kind = "http"
url = "http://127.0.0.1:{receiver.port}/ingest"
retry_initial_ms = 50
retry_max_ms = 500
timeout_secs = 2

[[events.sinks]]
name = "auth-only"
kind = "file"
path = "events/auth.jsonl"
email_events = []
audit_logs = ["authentication"]
fsync = "always"
"""
    daemon = start_daemon(tmp_path_factory.mktemp("events"), extra)
    wm = client_for(daemon)
    org, domain = new_org(wm)
    users = []
    for _ in range(2):
        name = f"u{uuid.uuid4().hex[:8]}"
        uid = wm.create_user(OrganizationId=org, Name=name, DisplayName=name, Password=PASSWORD)["UserId"]
        wm.register_to_work_mail(OrganizationId=org, EntityId=uid, Email=f"{name}@{domain}")
        users.append(f"{name}@{domain}")
    daemon.wm, daemon.org = wm, org
    yield daemon, receiver, users
    stop_daemon(daemon)
    receiver.stop()


def metrics(daemon):
    """{'name{labels}': value} from GET /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{daemon.ports['metrics']}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def send(daemon, sender, rcpts, subject):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, ", ".join(rcpts), subject
    m.set_content("events interop\n")
    with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"]) as s:
        s.send_message(m)


def email_records(daemon):
    path = daemon.data_dir / "events" / "email.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def failed_login(daemon, user):
    ctx = ssl.create_default_context(cafile=daemon.ca)
    with smtplib.SMTP_SSL("localhost", daemon.ports["submissions"], context=ctx) as s:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login(user, "Wrong-Passw0rd")


def test_metrics_follow_the_events(setup):
    daemon, _, users = setup
    before = metrics(daemon)
    for name in ["OrganizationEmailReceived_total", "MailboxEmailDelivered_total", "OutgoingEmailSent_total",
                 "IncomingEmailBounced_total", "OutgoingEmailBounced_total"]:
        assert name in before, name
    subject = f"metrics {uuid.uuid4().hex}"
    send(daemon, "someone@remote.test", users, subject)
    failed_login(daemon, users[0])

    def delivered():
        m = metrics(daemon)
        return m["MailboxEmailDelivered_total"] - before["MailboxEmailDelivered_total"] >= 2

    assert wait(delivered)
    after = metrics(daemon)
    assert after["OrganizationEmailReceived_total"] - before["OrganizationEmailReceived_total"] == 1
    # smtplib tries PLAIN then LOGIN: the metric says what the audit log says.
    failures = 'AuthenticationFailure_total{datapoint="1"}'
    audit = daemon.data_dir / "events" / "audit.jsonl"

    def failed_in_log():
        records = [json.loads(line) for line in audit.read_text().splitlines()]
        return sum(1 for r in records if r["log_type"] == "authentication" and not r["auth_successful"])

    assert after[failures] - before.get(failures, 0) >= 1
    assert wait(lambda: failed_in_log() == metrics(daemon)[failures])
    assert after['mailgate_listener_connections_total{listener="smtp"}'] >= 1
    assert after['mailgate_listener_sessions{listener="metrics"}'] >= 1, "this scrape is a session"
    assert after['mailgate_events_sink_sent_total{sink="email_log"}'] >= 3
    assert "mailgate_outbound_queue_recipients" in after
    assert after["mailgate_outbound_queue_oldest_age_seconds"] == 0, "nothing queued"
    # Group commit: the delivery was a store write and a commit.
    assert after["mailgate_store_commits_total"] - before["mailgate_store_commits_total"] >= 1
    assert after["mailgate_store_writes_total"] - before["mailgate_store_writes_total"] >= 1
    assert after["mailgate_store_writes_total"] >= after["mailgate_store_commits_total"]
    assert after["mailgate_store_redone_total"] == 0, "no write failed"
    assert "mailgate_store_lingered_total" in after


def test_filtered_file_sink_gets_only_authentication_records(setup):
    daemon, _, users = setup
    failed_login(daemon, users[1])
    path = daemon.data_dir / "events" / "auth.jsonl"
    assert wait(lambda: path.exists() and any(users[1] in line for line in path.read_text().splitlines()))
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records and all(r["log_type"] == "authentication" for r in records)


def test_http_sink_outage_loses_nothing(setup):
    daemon, receiver, users = setup
    tag = uuid.uuid4().hex
    receiver.stop()
    # SMTP load from 4 concurrent clients while the receiver is down.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: send(daemon, "load@remote.test", [users[i % 2]], f"outage {tag} {i}"), range(200)))

    def ours():
        traces = {r["traceId"] for r in email_records(daemon) if tag in r["event"].get("subject", "")}
        return [r["eventId"] for r in email_records(daemon) if r["traceId"] in traces]

    # Each message: ORGANIZATION_EMAIL_RECEIVED + MAILBOX_EMAIL_DELIVERED.
    assert wait(lambda: len(ours()) == 400)
    assert wait(lambda: metrics(daemon)['mailgate_events_sink_failed_total{sink="siem"}'] >= 1)
    assert not set(ours()) & set(receiver.ids()), "nothing got through while the receiver was down"
    assert metrics(daemon)['mailgate_events_sink_spool_bytes{sink="siem"}'] > 0
    time.sleep(1)
    receiver.start()
    assert wait(lambda: set(ours()) <= set(receiver.ids()), timeout=30)
    assert metrics(daemon)['mailgate_events_sink_dropped_total{sink="siem"}'] == 0
    # The receiver got every record of the daemon (audit ones too), each id at least once.
    assert wait(lambda: metrics(daemon)['mailgate_events_sink_spool_bytes{sink="siem"}'] == 0)


def test_email_monitoring_routes_the_organizations_email_events_to_its_sink(setup):
    daemon, _, users = setup
    daemon.wm.put_email_monitoring_configuration(
        OrganizationId=daemon.org,
        RoleArn="arn:aws:iam::000000000000:role/workmail-events",
        LogGroupArn="arn:aws:logs:local:000000000000:log-group:auth-only:*",
    )
    path = daemon.data_dir / "events" / "auth.jsonl"
    subject = f"monitored {uuid.uuid4().hex}"
    send(daemon, "someone@remote.test", [users[0]], subject)

    def routed():
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        return [r for r in lines if "traceId" in r]

    # RECEIVED and DELIVERED reach the sink whose own filter takes no email events.
    assert wait(lambda: len(routed()) >= 2)
    assert {r["event"]["eventName"] for r in routed()} == {"ORGANIZATION_EMAIL_RECEIVED", "MAILBOX_EMAIL_DELIVERED"}
    daemon.wm.delete_email_monitoring_configuration(OrganizationId=daemon.org)
    before = len(routed())
    send(daemon, "someone@remote.test", [users[0]], f"unmonitored {uuid.uuid4().hex}")
    time.sleep(1)
    assert len(routed()) == before


@pytest.mark.parametrize(
    "sink, says",
    [
        ('name = "x"\nkind = "kafka"\n', "kind"),
        ('name = "x"\nkind = "stdout"\npath = "a.jsonl"\n', 'events.sinks ("x").path'),
        ('name = "x"\nkind = "http"\nurl = "https://127.0.0.1:1/"\nca = "missing.pem"\n', 'events.sinks ("x")'),
    ],
)
def test_a_bad_sink_refuses_to_start_with_exit_78(tmp_path, sink, says):
    with pytest.raises(RuntimeError) as e:
        start_daemon(tmp_path, "[[events.sinks]]\n" + sink)
    assert "exited 78" in str(e.value) and says in str(e.value), str(e.value)
