"""`mailgate migrate` on a data directory the real daemon wrote: refused while
the daemon runs, then copied into PostgreSQL, and the daemon started again on
PostgreSQL with the same data directory serves the same organization, the same
admin key and the same mail to imaplib. Needs MAILGATE_TEST_POSTGRES
(tests/pg.sh)."""

import glob
import os
import subprocess
import uuid

import pytest

import imaplib
import smtplib
import ssl
from email.message import EmailMessage

from conftest import client_for, new_org, start_daemon, stop_daemon

PASSWORD = "Corr3ct-Horse-Battery"


def _psql(url, sql):
    """Runs `sql` with the psql next to the test server's binaries."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    if not found:
        pytest.skip("no psql")
    out = subprocess.run(
        [found[-1], url, "-Atqc", sql], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def _migrate(*args):
    return subprocess.run(
        [os.environ["MAILGATE_BIN"], "migrate", *args], capture_output=True, text=True
    )


def _database_url(server, name):
    base, _, _ = server.rpartition("/")
    return f"{base}/{name}"


def test_migrate_a_real_data_dir(tmp_path):
    server = os.environ.get("MAILGATE_TEST_POSTGRES")
    if not server:
        pytest.skip("MAILGATE_TEST_POSTGRES is not set (tests/pg.sh)")
    name = f"mg_migrate_{uuid.uuid4().hex[:12]}"
    _psql(server, f'CREATE DATABASE "{name}"')
    target = _database_url(server, name)
    daemon = start_daemon(tmp_path)
    wm = client_for(daemon)
    org_id, domain = new_org(wm)
    uid = wm.create_user(OrganizationId=org_id, Name="bob", DisplayName="Bob", Password=PASSWORD)["UserId"]
    bob = f"bob@{domain}"
    wm.register_to_work_mail(OrganizationId=org_id, EntityId=uid, Email=bob)
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "carol@pass.test", bob, "kept across the migration"
    m.set_content("x\n")
    with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"]) as s:
        assert s.send_message(m) == {}
    with imaplib.IMAP4_SSL("localhost", daemon.ports["imaps"], ssl_context=ssl.create_default_context(cafile=daemon.ca)) as c:
        c.login(bob, PASSWORD)
        before = c.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY)")[1][0]
    store = f"sqlite:{daemon.data_dir / 'store.sqlite'}"

    running = _migrate("--from", store, "--to", target)
    assert running.returncode == 78, running
    assert "stop the daemon" in running.stderr

    stop_daemon(daemon)
    bad = _migrate("--from", str(daemon.data_dir / "store.sqlite"), "--to", target)
    assert bad.returncode == 64 and "sqlite:PATH" in bad.stderr, bad

    done = _migrate("--from", store, "--to", target)
    assert done.returncode == 0, done
    assert "verified" in done.stdout, done
    again = _migrate("--from", store, "--to", target)
    assert again.returncode == 78 and "already holds data" in again.stderr, again

    # The same data directory, now on PostgreSQL: same organization, key, mail.
    (daemon.data_dir / "run" / "ports.json").unlink(missing_ok=True)
    daemon = start_daemon(tmp_path, f'[store]\nbackend = "postgres"\nurl = "{target}"\n')
    try:
        orgs = [o["OrganizationId"] for o in client_for(daemon).list_organizations()["OrganizationSummaries"]]
        assert org_id in orgs
        with imaplib.IMAP4_SSL("localhost", daemon.ports["imaps"], ssl_context=ssl.create_default_context(cafile=daemon.ca)) as c:
            c.login(bob, PASSWORD)
            after = c.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY)")[1][0]
            c.select("INBOX", readonly=True)
            _, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert after == before, (before, after)
        assert b"kept across the migration" in data[0][1]
    finally:
        stop_daemon(daemon)
