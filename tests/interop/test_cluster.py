"""Issue 19: two mailgate daemons A and B, each with its own data_dir, on one
PostgreSQL database, behave as one server to real clients (imaplib, smtplib,
boto3, requests for EWS), over TLS through the real listeners.

The database server is the private one tests/pg.sh started (MAILGATE_TEST_POSTGRES);
each fixture creates its own database on it. Without the variable these tests
skip, except under CI=true, where they fail: CI always has the server.
"""

import glob
import imaplib
import os
import re
import signal
import smtplib
import socketserver
import ssl
import statistics
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage

import pytest
import requests

from conftest import admin_key_works, client_for, impersonating_works, new_org, start_daemon, stop_daemon

PASSWORD = "Corr3ct-Horse-Battery"
SERVER = os.environ.get("MAILGATE_TEST_POSTGRES")


def need_postgres():
    if SERVER:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("MAILGATE_TEST_POSTGRES is not set: run under tests/pg.sh (CI=true never skips)")
    pytest.skip("MAILGATE_TEST_POSTGRES is not set (run under tests/pg.sh)")


def psql():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)
    return found[0] if found else "psql"


def new_database():
    """A fresh database on the test server; its postgres:// URL."""
    need_postgres()
    name = f"mg_cluster_{uuid.uuid4().hex[:12]}"
    subprocess.run([psql(), SERVER, "-qAtc", f"CREATE DATABASE {name}"], check=True)
    return SERVER.rsplit("/", 1)[0] + "/" + name


class Recorder(socketserver.StreamRequestHandler):
    """A smarthost that records every (Message-ID, recipient) it accepts."""

    accepted = []
    lock = threading.Lock()

    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 smarthost.test ESMTP")
        rcpts = []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            text = line.decode(errors="replace").strip()
            verb = text.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 smarthost.test")
            elif verb == "MAIL":
                rcpts = []
                self.reply("250 ok")
            elif verb == "RCPT":
                rcpts.append(text.split("<", 1)[1].split(">", 1)[0].lower())
                self.reply("250 2.1.5 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                mid = None
                while (body := self.rfile.readline()) not in (b".\r\n", b""):
                    if mid is None and body.lower().startswith(b"message-id:"):
                        mid = body.split(b":", 1)[1].strip().decode()
                with Recorder.lock:
                    Recorder.accepted.extend((mid, r) for r in rcpts)
                self.reply("250 2.0.0 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


def daemon_config(url, extra=""):
    return f'[store]\nbackend = "postgres"\nurl = "{url}"\npool_size = 8\n[ews]\nenabled = true\n' + extra


def start_pair(tmp_path_factory, url, extra=""):
    """A and B started at the same moment on one database."""
    roots = [tmp_path_factory.mktemp(n) for n in ("a", "b")]
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda root: start_daemon(root, daemon_config(url, extra)), roots)
    return a, b


@pytest.fixture(scope="module")
def smarthost():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Recorder)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def pair(tmp_path_factory, smarthost):
    url = new_database()
    relay = f'[smtp.relay]\nhost = "127.0.0.1"\nport = {smarthost}\ntls = "none"\nretry_initial_secs = 1\n'
    # A sink that takes no email events of its own: only email monitoring routes any.
    monitored = (
        '[events]\nemail_log = "events/email.jsonl"\naudit_log = "events/audit.jsonl"\n'
        '[[events.sinks]]\nname = "monitored"\nkind = "file"\npath = "events/monitored.jsonl"\n'
        'email_events = []\naudit_logs = []\n'
    )
    a, b = start_pair(tmp_path_factory, url, relay + monitored)
    yield a, b
    stop_daemon(a)
    stop_daemon(b)


def wait_for(check, timeout, step=0.02):
    """Polls `check` until it returns a true value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def ctx(daemon):
    return ssl.create_default_context(cafile=daemon.ca)


def imap(daemon, user):
    m = imaplib.IMAP4_SSL("localhost", daemon.ports["imaps"], ssl_context=ctx(daemon))
    m.login(user, PASSWORD)
    return m


def can_login(daemon, user):
    try:
        imap(daemon, user).logout()
        return True
    except imaplib.IMAP4.error:
        return False


def subjects(daemon, user):
    """The Subject of every message in `user`'s INBOX, read through `daemon`."""
    m = imap(daemon, user)
    m.select("INBOX", readonly=True)
    _, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    m.logout()
    return {part[1].decode().split(":", 1)[1].strip() for part in data if isinstance(part, tuple)}


def new_user(wm, org_id, domain):
    name = f"u{uuid.uuid4().hex[:8]}"
    uid = wm.create_user(OrganizationId=org_id, Name=name, DisplayName=name, Password=PASSWORD)["UserId"]
    wm.register_to_work_mail(OrganizationId=org_id, EntityId=uid, Email=f"{name}@{domain}")
    return uid, f"{name}@{domain}"


def team(pair, users=2):
    """An organization made on A, with `users` users B already lets log in."""
    a, b = pair
    wm = client_for(a)
    org_id, domain = new_org(wm)
    made = [new_user(wm, org_id, domain) for _ in range(users)]
    for _, address in made:
        assert wait_for(lambda: can_login(b, address), 1.5), f"B never saw {address}"
    return wm, org_id, domain, made


def message(sender, to, subject):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    m["Message-ID"] = f"<{uuid.uuid4().hex}@cluster.test>"
    m.set_content("two daemons, one server\n")
    return m


def mx_send(daemon, to, subject):
    with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"]) as s:
        assert s.send_message(message("carol@pass.test", to, subject)) == {}


def test_two_daemons_started_together_create_one_organization_and_share_keys(pair):
    """Both daemons provisioned an empty database at once: one first organization,
    and A's admin key works on B (the key lives in the database, not in A's data_dir)."""
    import boto3

    a, b = pair
    key, secret = a.key()
    listed = []
    for daemon in (a, b):
        wm = boto3.client(
            "workmail", endpoint_url=daemon.endpoint, verify=daemon.ca, region_name="local",
            aws_access_key_id=key, aws_secret_access_key=secret,
        )
        listed.append(sorted((o["OrganizationId"], o["Alias"]) for o in wm.list_organizations()["OrganizationSummaries"]))
    first = [o for o in listed[0] if o[1] == "example-test"]
    assert len(first) == 1, listed[0]
    assert first[0] in listed[1]


def test_idle_on_b_sees_each_delivery_into_a_within_a_second(pair):
    a, b = pair
    _, _, _, [(_, bob)] = team(pair, users=1)
    m = imap(b, bob)
    assert m.select("INBOX")[0] == "OK"
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    assert m.readline().startswith(b"+")
    m.sock.settimeout(5)
    took = []
    for i in range(50):
        mx_send(a, bob, f"idle {i}")
        sent = time.monotonic()
        while True:
            line = m.readline()
            if line.endswith(b"EXISTS\r\n"):
                break
        took.append(time.monotonic() - sent)
        assert int(line.split()[1]) == i + 1, line
    m.send(b"DONE\r\n")
    while not m.readline().startswith(tag):
        pass
    m.logout()
    print(f"IDLE on B after a delivery into A: median {statistics.median(took) * 1000:.1f} ms, max {max(took) * 1000:.1f} ms")
    assert max(took) < 1.0, took
    assert statistics.median(took) < 0.2, took


def test_sessions_on_both_daemons_get_unique_ascending_uids(pair):
    """Two daemons x eight sessions (SMTP deliveries and IMAP APPENDs) into one
    folder: every message gets its own UID, each session's UIDs ascend, and
    HIGHESTMODSEQ never goes back as seen from either daemon."""
    a, b = pair
    _, _, _, [(_, bob)] = team(pair, users=1)
    total = int(os.environ.get("MAILGATE_CLUSTER_MESSAGES", "4000"))
    per_session = total // 16

    def appender(daemon):
        m = imap(daemon, bob)
        uids = []
        for i in range(per_session):
            raw = message("carol@pass.test", bob, f"append {i}").as_bytes()
            typ, data = m.append("INBOX", None, None, raw)
            assert typ == "OK", data
            uids.append(int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1)))
        m.logout()
        return uids

    def sender(daemon):
        with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"]) as s:
            for i in range(per_session):
                assert s.send_message(message("carol@pass.test", bob, f"smtp {i}")) == {}
        return []

    stop = threading.Event()
    seen = {a.endpoint: [], b.endpoint: []}

    def watcher(daemon):
        m = imap(daemon, bob)
        while not stop.is_set():
            typ, data = m.status("INBOX", "(HIGHESTMODSEQ)")
            seen[daemon.endpoint].append(int(re.search(rb"HIGHESTMODSEQ (\d+)", data[0]).group(1)))
            time.sleep(0.05)
        m.logout()

    watchers = [threading.Thread(target=watcher, args=(d,)) for d in (a, b)]
    for w in watchers:
        w.start()
    started = time.monotonic()
    jobs = [(appender if i % 2 else sender, d) for d in (a, b) for i in range(8)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda job: job[0](job[1]), jobs))
    took = time.monotonic() - started
    stop.set()
    for w in watchers:
        w.join()
    for uids in results:
        assert uids == sorted(uids) and len(set(uids)) == len(uids), uids
    for daemon in (a, b):
        m = imap(daemon, bob)
        m.select("INBOX", readonly=True)
        typ, data = m.uid("SEARCH", None, "ALL")
        uids = [int(u) for u in data[0].split()]
        assert len(uids) == per_session * 16 and len(set(uids)) == len(uids)
        m.logout()
        assert seen[daemon.endpoint] == sorted(seen[daemon.endpoint]), "HIGHESTMODSEQ went back"
    print(f"{per_session * 16} messages from 16 sessions on two daemons in {took:.1f} s")


def test_conditional_flag_changes_from_both_daemons_agree(pair):
    """CONDSTORE across daemons: for each of 20 messages, A and B race a STORE
    UNCHANGEDSINCE the same MODSEQ (A adds \\Seen, B \\Flagged): exactly one wins
    each, and both daemons then report the same flags and MODSEQs."""
    a, b = pair
    _, _, _, [(_, bob)] = team(pair, users=1)
    for i in range(20):
        mx_send(a, bob, f"cond {i}")

    def state(daemon):
        m = imap(daemon, bob)
        m.select("INBOX")
        _, data = m.uid("FETCH", "1:*", "(FLAGS MODSEQ)")
        m.logout()
        out = {}
        for line in data:
            uid = int(re.search(rb"UID (\d+)", line).group(1))
            modseq = int(re.search(rb"MODSEQ \((\d+)\)", line).group(1))
            flags = set(re.search(rb"FLAGS \(([^)]*)\)", line).group(1).split())
            out[uid] = (modseq, flags)
        return out

    start = state(a)
    assert len(start) == 20 and start == state(b)

    def race(daemon, flag):
        m = imap(daemon, bob)
        m.select("INBOX")
        for uid, (modseq, _) in sorted(start.items()):
            typ, _ = m.uid("STORE", str(uid), f"(UNCHANGEDSINCE {modseq}) +FLAGS ({flag})")
            assert typ == "OK"
        m.logout()

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda job: race(*job), [(a, "\\Seen"), (b, "\\Flagged")]))
    end_a, end_b = state(a), state(b)
    assert end_a == end_b, "the daemons disagree"
    for uid, (modseq, flags) in end_a.items():
        won = {b"\\Seen", b"\\Flagged"} & flags
        assert len(won) == 1, (uid, flags)
        assert modseq > start[uid][0]


def test_email_monitoring_set_on_a_routes_the_events_of_b(pair):
    """PutEmailMonitoringConfiguration on A: B (which delivers the mail) sends the
    organization's email events to the named sink within a second; deleted on A,
    B stops."""
    import json

    a, b = pair
    wm, org_id, _, [(_, bob)] = team(pair, users=1)
    path = b.data_dir / "events" / "monitored.jsonl"

    def routed(subject):
        if not path.exists():
            return []
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        return [r for r in lines if r.get("event", {}).get("subject") == subject]

    wm.put_email_monitoring_configuration(
        OrganizationId=org_id,
        RoleArn="arn:aws:iam::000000000000:role/workmail-events",
        LogGroupArn="arn:aws:logs:local:000000000000:log-group:monitored:*",
    )
    time.sleep(1.0)
    mx_send(b, bob, "monitored on b")
    assert wait_for(lambda: routed("monitored on b"), 5), "B did not route to the sink A configured"
    wm.delete_email_monitoring_configuration(OrganizationId=org_id)
    time.sleep(1.0)
    mx_send(b, bob, "unmonitored on b")
    time.sleep(1.0)
    assert routed("unmonitored on b") == [], "B still routes after the delete on A"


def test_disable_user_and_deny_rule_made_on_a_cut_sessions_on_b(pair):
    a, b = pair
    wm, org_id, _, [(alice_id, alice), (_, bob)] = team(pair)
    live = imap(b, alice)
    assert live.select("INBOX")[0] == "OK"
    wm.deregister_from_work_mail(OrganizationId=org_id, EntityId=alice_id)
    started = time.monotonic()
    assert wait_for(lambda: not can_login(b, alice), 1.0), "B still lets a disabled user in"

    def cut(m):
        try:
            return m.noop()[0] != "OK"
        except (imaplib.IMAP4.abort, imaplib.IMAP4.error, OSError):
            return True

    assert wait_for(lambda: cut(live), max(0.1, 1.0 - (time.monotonic() - started)), step=0.05)

    live = imap(b, bob)
    assert live.select("INBOX")[0] == "OK"
    wm.put_access_control_rule(
        OrganizationId=org_id, Name="deny-imap", Effect="DENY", Description="cluster",
        IpRanges=["127.0.0.0/8"], Actions=["IMAP"],
    )
    started = time.monotonic()
    assert wait_for(lambda: not can_login(b, bob), 1.0), "B ignores a DENY rule made on A"
    assert wait_for(lambda: cut(live), max(0.1, 1.0 - (time.monotonic() - started)), step=0.05)
    wm.delete_access_control_rule(OrganizationId=org_id, Name="deny-imap")
    assert wait_for(lambda: can_login(b, bob), 1.0)


def full_access_role(wm, org_id):
    """A new impersonation role allowing everything: its id."""
    return wm.create_impersonation_role(
        OrganizationId=org_id, Name=f"r{uuid.uuid4().hex[:8]}", Type="FULL_ACCESS",
        Rules=[{"ImpersonationRuleId": "all", "Name": "all", "Effect": "ALLOW"}],
    )["ImpersonationRoleId"]


def test_a_token_issued_by_a_works_on_b_until_its_role_is_deleted(pair):
    a, b = pair
    wm, org_id, _, [(_, bob)] = team(pair, users=1)
    role_id = full_access_role(wm, org_id)
    token = wm.assume_impersonation_role(OrganizationId=org_id, ImpersonationRoleId=role_id)["Token"]

    def get_inbox():
        return impersonating_works(b, token, bob)

    assert wait_for(get_inbox, 1.0), "a token minted on A is refused on B"
    wm.delete_impersonation_role(OrganizationId=org_id, ImpersonationRoleId=role_id)
    assert wait_for(lambda: not get_inbox(), 1.0), "B still honours a token of a deleted role"


def test_two_queue_runners_deliver_each_recipient_once(pair):
    a, b = pair
    _, _, _, [(_, alice), (_, bob)] = team(pair)
    Recorder.accepted.clear()
    expected = set()
    for daemon, sender in ((a, alice), (b, bob)):
        with smtplib.SMTP_SSL("localhost", daemon.ports["submissions"], context=ctx(daemon)) as s:
            s.login(sender, PASSWORD)
            for i in range(25):
                m = message(sender, "x@remote.test, y@remote.test", f"out {i}")
                assert s.send_message(m) == {}
                mid = m["Message-ID"]
                expected |= {(mid, "x@remote.test"), (mid, "y@remote.test")}
    assert wait_for(lambda: len(Recorder.accepted) >= len(expected), 30, step=0.1)
    time.sleep(1.5)  # a second delivery of anything would arrive by now
    assert sorted(Recorder.accepted) == sorted(expected)


def test_kill_9_of_a_under_load_loses_nothing_acknowledged_and_b_goes_on(tmp_path_factory):
    url = new_database()
    a, b = start_pair(tmp_path_factory, url)
    try:
        _, _, _, [(_, bob)] = team((a, b), users=1)
        acknowledged = []
        lock = threading.Lock()
        stop = threading.Event()

        def load(n):
            try:
                with smtplib.SMTP("127.0.0.1", a.ports["smtp"], timeout=5) as s:
                    i = 0
                    while not stop.is_set():
                        subject = f"load {n}-{i}"
                        s.send_message(message("carol@pass.test", bob, subject))
                        with lock:
                            acknowledged.append(subject)
                        i += 1
            except (smtplib.SMTPException, OSError):
                pass

        threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=10)
        assert acknowledged, "nothing was sent before the kill"
        stored = subjects(b, bob)
        missing = set(acknowledged) - stored
        assert not missing, f"{len(missing)} acknowledged messages lost"
        mx_send(b, bob, "after the kill")
        assert wait_for(lambda: can_login(b, bob), 1.0)
        print(f"{len(acknowledged)} messages acknowledged by A before kill -9, all stored")
    finally:
        if a.proc.poll() is None:
            a.proc.kill()
        stop_daemon(b)


def smtp_source():
    """Postfix's smtp-source beside the smtp-sink tests/run.sh unpacks (SMTP_SINK),
    with its libraries: (argv0, environment)."""
    sink = os.environ.get("SMTP_SINK")
    if not sink:
        if os.environ.get("CI") == "true":
            pytest.fail("SMTP_SINK is not set under CI=true (tests/run.sh unpacks Postfix)")
        pytest.skip("SMTP_SINK is not set (tests/run.sh unpacks Postfix's smtp-sink and smtp-source)")
    usr = os.path.dirname(os.path.dirname(sink))
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(usr, "lib", "postfix"))
    return os.path.join(usr, "sbin", "smtp-source"), env


def test_kill_9_of_a_during_an_smtp_source_run_loses_nothing_counted(tmp_path_factory):
    SESSIONS = 8
    """smtp-source's running counter (-c) moves when a session has sent a message's
    final "." (its source: before the 250 is read), so at the kill each of the
    SESSIONS may have one counted message in flight: B must hold at least the
    count less SESSIONS, and no more than the count, and B keeps serving. The
    smtplib test above checks every 250 exactly."""
    source, env = smtp_source()
    url = new_database()
    a, b = start_pair(tmp_path_factory, url)
    try:
        _, _, _, [(_, bob)] = team((a, b), users=1)
        run = subprocess.Popen(
            [source, "-c", "-s", str(SESSIONS), "-m", "1000000", "-l", "2048", "-f", "carol@pass.test",
             "-t", bob, f"127.0.0.1:{a.ports['smtp']}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )
        time.sleep(2.0)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(timeout=10)
        try:
            out, err = run.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            run.kill()
            out, err = run.communicate()
        counts = [int(c) for c in re.findall(rb"\d+", out)]
        assert counts, f"smtp-source counted nothing: {err.decode(errors='replace')}"
        acknowledged = max(counts)
        def count():
            m = imap(b, bob)
            _, [exists] = m.select("INBOX", readonly=True)
            m.logout()
            return int(exists)

        stored = count()
        assert acknowledged - SESSIONS <= stored <= acknowledged, f"{acknowledged} counted by smtp-source, {stored} stored"
        mx_send(b, bob, "after the kill")
        assert wait_for(lambda: count() == stored + 1, 1.0)
        print(f"smtp-source: {acknowledged} messages counted before kill -9 of A, {stored} stored")
    finally:
        if a.proc.poll() is None:
            a.proc.kill()
        stop_daemon(b)


class PrivatePostgres:
    """A PostgreSQL server of this test's own (initdb in a temp dir, 127.0.0.1 on a
    free port), which the test may stop and start again; stopped by pid at the end."""

    def __init__(self):
        need_postgres()
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), reverse=True)
        if not found:
            pytest.fail("no PostgreSQL binaries (tests/pg.sh installs them)")
        self.bin = os.path.dirname(found[0])
        # Its own directory under /tmp: the postgres user cannot enter pytest's.
        import pathlib
        import tempfile

        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="mailgate-pg-outage."))
        self.run = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        if os.getuid() == 0:
            subprocess.run(["chown", "postgres:", str(self.dir)], check=True)
        subprocess.run(
            self.run + [f"{self.bin}/initdb", "-D", str(self.dir / "data"), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
            check=True, stdout=subprocess.DEVNULL,
        )
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            self.run + [f"{self.bin}/postgres", "-D", str(self.dir / "data"), "-k", str(self.dir),
                        "-h", "127.0.0.1", "-p", str(self.port), "-c", "fsync=on"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        ready = lambda: subprocess.run(  # noqa: E731
            [f"{self.bin}/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        ).returncode == 0
        assert wait_for(ready, 30, step=0.1), "private PostgreSQL did not start"

    def stop(self):
        pid_file = self.dir / "data" / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, signal.SIGINT)  # fast shutdown: clients are cut off
            assert wait_for(lambda: not pid_file.exists(), 30, step=0.1)
        if self.proc:
            self.proc.wait(timeout=30)

    def remove(self):
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


def test_an_outage_of_postgres_is_answered_try_later_and_nothing_is_lost(tmp_path_factory):
    pg = PrivatePostgres()
    pg.start()
    a = b = None
    try:
        a, b = start_pair(tmp_path_factory, pg.url)
        _, _, _, [(_, bob)] = team((a, b), users=1)
        for i in range(5):
            mx_send(a, bob, f"before {i}")
        pg.stop()
        # SMTP: the message cannot be stored, so it is refused for now (4xx), never
        # acknowledged.
        with pytest.raises(smtplib.SMTPDataError) as refused:
            with smtplib.SMTP("127.0.0.1", a.ports["smtp"], timeout=30) as s:
                s.send_message(message("carol@pass.test", bob, "during"))
        assert refused.value.smtp_code == 451, refused.value
        # IMAP: the login is known from memory, the mailbox is not reachable.
        m = imaplib.IMAP4_SSL("localhost", b.ports["imaps"], ssl_context=ctx(b), timeout=30)
        with pytest.raises(imaplib.IMAP4.error) as no:
            m.login(bob, PASSWORD)
        assert "UNAVAILABLE" in str(no.value), no.value
        m.shutdown()
        pg.start()

        def delivered_again():
            try:
                mx_send(a, bob, "after")
                return True
            except (smtplib.SMTPException, OSError):
                return False

        assert wait_for(delivered_again, 30, step=0.5), "A did not recover"
        stored = subjects(b, bob)
        assert {f"before {i}" for i in range(5)} | {"after"} <= stored, stored
        assert "during" not in stored
    finally:
        for d in (a, b):
            if d is not None:
                stop_daemon(d)
        pg.stop()
        pg.remove()


def test_an_ews_streaming_subscription_on_b_sees_mail_delivered_through_a(pair):
    """exchangelib's streaming notifications on B (Subscribe + GetStreamingEvents)
    report a message delivered through A within a second."""
    import requests.adapters
    from exchangelib import DELEGATE, Account, Configuration, Credentials
    from exchangelib.properties import NewMailEvent
    from exchangelib.protocol import BaseProtocol, CachingProtocol

    a, b = pair
    _, _, _, [(_, bob)] = team(pair, users=1)

    class VerifyWithB(requests.adapters.HTTPAdapter):
        def send(self, *args, **kwargs):
            kwargs["verify"] = b.ca
            return super().send(*args, **kwargs)

    saved = BaseProtocol.HTTP_ADAPTER_CLS
    BaseProtocol.HTTP_ADAPTER_CLS = VerifyWithB
    CachingProtocol.clear_cache()
    try:
        config = Configuration(
            service_endpoint=f"https://localhost:{b.ports['https']}/EWS/Exchange.asmx",
            credentials=Credentials(bob, PASSWORD),
        )
        account = Account(bob, config=config, autodiscover=False, access_type=DELEGATE)
        subscription = account.inbox.subscribe_to_streaming()
        mx_send(a, bob, "streamed across daemons")
        sent = time.monotonic()
        seen = None
        for notification in account.inbox.get_streaming_events(subscription, connection_timeout=1):
            if any(isinstance(e, NewMailEvent) for e in notification.events):
                seen = time.monotonic() - sent
                break
        account.inbox.unsubscribe(subscription)
    finally:
        BaseProtocol.HTTP_ADAPTER_CLS = saved
        CachingProtocol.clear_cache()
    assert seen is not None and seen < 1.0, seen


def rotate(daemon, what):
    """`mailgate admin rotate-token-keys` / `rotate-admin-key` through `daemon`: its JSON answer."""
    import json

    p = subprocess.run(
        [os.environ["MAILGATE_BIN"], "admin", what, "--data-dir", str(daemon.data_dir)],
        capture_output=True, text=True, timeout=60,
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_rotations_made_through_a_reach_b(pair):
    """The last test of the pair (its admin key changes). Token keys rotated
    through A: a token A mints with the new key works on B within a second, one
    minted before still works; the admin key rotated through A: B accepts the
    new key and refuses the old one within a second, and B's credentials file
    holds the new key."""
    a, b = pair
    wm, org_id, _, [(_, bob)] = team(pair, users=1)
    role_id = full_access_role(wm, org_id)

    def mint():
        return wm.assume_impersonation_role(OrganizationId=org_id, ImpersonationRoleId=role_id)["Token"]

    def works_on_b(token):
        return impersonating_works(b, token, bob)

    before = mint()
    assert wait_for(lambda: works_on_b(before), 1.0)
    key_id = rotate(a, "rotate-token-keys")["KeyId"]
    after = mint()
    started = time.monotonic()
    assert wait_for(lambda: works_on_b(after), 1.0), f"B does not know A's new key {key_id}"
    assert time.monotonic() - started < 1.0
    assert works_on_b(before), "the key rotated out still verifies"

    old = a.key()
    out = rotate(a, "rotate-admin-key")
    new = (out["AccessKeyId"], out["SecretAccessKey"])
    assert new != old and a.key() == new, "A's credentials file holds the new key"

    assert admin_key_works(a, new) and not admin_key_works(a, old)
    assert wait_for(
        lambda: admin_key_works(b, new) and not admin_key_works(b, old), 1.0
    ), "B did not follow the rotation"
    assert wait_for(lambda: b.key() == new, 1.0), "B's credentials file still holds the old key"
