"""Mailbox export jobs through boto3 and the AWS CLI against the real daemon: a
mailbox filled over SMTP (smtplib) and IMAP is exported, the zip is opened with
zipfile and every message compared byte for byte with IMAP FETCH BODY.PEEK[],
the summary's sha384Hash checked against the zip, and the export re-imported
with IMAP APPEND into another mailbox, reproducing every message byte for byte.
Plus the model's error cases, the limits, pagination, cancel and a job that
cannot write its bucket directory."""

import hashlib
import imaplib
import json
import os
import smtplib
import time
import uuid
import zipfile

import pytest
from botocore.exceptions import ClientError

from test_admin_awscli import aws  # noqa: F401  (fixture)
from test_smtp import PASSWORD, delivered_to, message, new_user, tls_context

ROLE = "arn:aws:iam::000000000000:role/workmail-export"
KEY = "arn:aws:kms:local:000000000000:key/00000000-1111-2222-3333-444444444444"


def start(wm, org_id, entity, bucket="exports-bucket", prefix="mail/2026", token=None, **extra):
    return wm.start_mailbox_export_job(
        ClientToken=token or uuid.uuid4().hex, OrganizationId=org_id, EntityId=entity,
        RoleArn=ROLE, KmsKeyArn=KEY, S3BucketName=bucket, S3Prefix=prefix, **extra,
    )["JobId"]


def wait_end(wm, org_id, job_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = wm.describe_mailbox_export_job(OrganizationId=org_id, JobId=job_id)
        if d["State"] != "RUNNING":
            return d
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still RUNNING")


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def imap(mailgate, user):
    m = imaplib.IMAP4_SSL("localhost", mailgate.ports["imaps"], ssl_context=tls_context(mailgate))
    m.login(user, PASSWORD)
    return m


def quoted(folder):
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fetch_all(m, folder):
    """{uid: exact bytes} of every message of a folder (BODY.PEEK[])."""
    typ, _ = m.select(quoted(folder), readonly=True)
    assert typ == "OK", folder
    typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
    assert typ == "OK"
    out = {}
    for item in data:
        if isinstance(item, tuple):
            head = item[0].decode()
            uid = int(head.split("UID ")[1].split()[0])
            out[uid] = item[1]
    return out


def read_zip(path):
    """(folders, {entry name: bytes of each .eml}) of an export zip."""
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        folders = [n for n in z.namelist() if n.endswith("/")]
        emls = {i.filename: (z.read(i), i) for i in z.infolist() if i.filename.endswith(".eml")}
        for _, info in emls.values():
            assert info.compress_type == zipfile.ZIP_DEFLATED
    return folders, emls


def test_export_of_a_mailbox_filled_over_smtp_then_reimported_over_imap(workmail, mailgate, org):
    org_id, domain = org
    _, alice = new_user(workmail, org_id, domain)
    bob_id, bob = new_user(workmail, org_id, domain)
    _, carol = new_user(workmail, org_id, domain)
    subjects = [f"export {i} {uuid.uuid4().hex}" for i in range(3)]
    with smtplib.SMTP_SSL("localhost", mailgate.ports["submissions"], context=tls_context(mailgate)) as s:
        s.login(alice, PASSWORD)
        for subject in subjects:
            assert s.send_message(message(alice, bob, subject)) == {}
    for subject in subjects:
        assert delivered_to(mailgate, bob, subject)
    # A nested folder with a copy, and an APPENDed message of raw 8-bit bytes, which
    # a lossy (decoding) export would change. (imaplib turns bare LFs into CRLF.)
    odd = b"From: x@y.test\r\nSubject: odd\r\n\r\nline one\r\nline \xe9t\xe9 two  \r\n"
    with imap(mailgate, bob) as m:
        assert m.create("Projects/2026")[0] == "OK"
        m.select("INBOX")
        assert m.uid("COPY", "2", "Projects/2026")[0] == "OK"
        assert m.append("Projects/2026", None, None, odd)[0] == "OK"
        before = {f: fetch_all(m, f) for f in ["INBOX", "Projects/2026", "Sent Items"]}
        m.logout()

    job_id = start(workmail, org_id, bob, Description="before migration")
    d = wait_end(workmail, org_id, job_id)
    assert d["State"] == "COMPLETED", d.get("ErrorInfo")
    assert d["EstimatedProgress"] == 100
    assert d["EntityId"] == bob_id and d["Description"] == "before migration"
    assert (d["RoleArn"], d["KmsKeyArn"]) == (ROLE, KEY)
    assert (d["S3BucketName"], d["S3Prefix"]) == ("exports-bucket", "mail/2026")
    assert d["S3Path"] == f"exports-bucket/mail/2026/{job_id}.zip"
    assert d["EndTime"] >= d["StartTime"]
    assert "ErrorInfo" not in d

    out = mailgate.data_dir / "exports" / "exports-bucket" / "mail" / "2026"
    zip_path, summary_path = out / f"{job_id}.zip", out / f"{job_id}.json"
    assert sorted(p.name for p in out.iterdir() if job_id in p.name) == sorted([zip_path.name, summary_path.name])
    summary = json.loads(summary_path.read_text())
    assert set(summary) == {"totalMessages", "totalFolders", "totalBytes", "totalNonExportableItems",
                            "sha384Hash", "startTime", "endTime"}
    assert summary["sha384Hash"] == hashlib.sha384(zip_path.read_bytes()).hexdigest()

    folders, emls = read_zip(zip_path)
    assert "INBOX/" in folders and "Projects/2026/" in folders and "Calendar/" in folders
    assert not any(f.startswith(("Contacts", "Tasks", "Notes")) for f in folders)
    assert summary["totalFolders"] == str(len(folders))
    assert summary["totalMessages"] == str(len(emls))
    assert summary["totalBytes"] == str(sum(len(b) for b, _ in emls.values()))
    assert summary["totalNonExportableItems"] == "0"
    # Every message of the mailbox, byte for byte, under its folder and UID.
    expected = {f"{folder}/{uid:010}.eml": raw for folder, msgs in before.items() for uid, raw in msgs.items()}
    assert {name: b for name, (b, _) in emls.items()} == expected
    assert len(expected) == 5  # 3 in INBOX, 2 in Projects/2026 (bob sent nothing)
    assert emls[f"Projects/2026/{2:010}.eml"][0] == odd

    # Re-import into carol's mailbox with APPEND, folder by folder, in order.
    with imap(mailgate, carol) as m:
        for folder in sorted({n.rsplit("/", 1)[0] for n in emls}):
            if folder != "INBOX":
                m.create(quoted(folder))
            names = sorted(n for n in emls if n.rsplit("/", 1)[0] == folder)
            for n in names:
                raw, info = emls[n]
                when = time.mktime(info.date_time + (0, 0, -1))
                assert m.append(quoted(folder), None, imaplib.Time2Internaldate(when), raw)[0] == "OK"
            got = fetch_all(m, folder)
            assert [got[u] for u in sorted(got)] == [emls[n][0] for n in names], folder
        m.logout()


def test_start_errors_follow_the_model(workmail, mailgate, org):
    org_id, domain = org
    uid, addr = new_user(workmail, org_id, domain)
    bad = [
        dict(S3BucketName="Bad_Bucket"),
        dict(S3BucketName="ab"),
        dict(S3BucketName="192.168.0.1"),
        dict(S3BucketName="xn--bucket"),
        dict(S3Prefix="../../etc"),
        dict(S3Prefix="a//b"),
        dict(RoleArn="arn:aws:kms::000000000000:key/not-a-role"),
        dict(KmsKeyArn="arn:aws:iam::000000000000:role/not-a-key"),
        dict(ClientToken="has space"),
    ]
    for override in bad:
        args = dict(ClientToken=uuid.uuid4().hex, OrganizationId=org_id, EntityId=uid, RoleArn=ROLE,
                    KmsKeyArn=KEY, S3BucketName="good-bucket", S3Prefix="p")
        args.update(override)
        with pytest.raises(ClientError) as e:
            workmail.start_mailbox_export_job(**args)
        assert error_code(e) == "InvalidParameterException", override
    with pytest.raises(ClientError) as e:
        start(workmail, org_id, f"nobody@{domain}")
    assert error_code(e) == "EntityNotFoundException"
    with pytest.raises(ClientError) as e:
        start(workmail, "m-" + "0" * 32, uid)
    assert error_code(e) == "OrganizationNotFoundException"
    assert workmail.list_mailbox_export_jobs(OrganizationId=org_id)["Jobs"] == []

    token = uuid.uuid4().hex
    job_id = start(workmail, org_id, addr, token=token)
    assert start(workmail, org_id, addr, token=token) == job_id, "a repeated ClientToken is the same job"
    assert wait_end(workmail, org_id, job_id)["State"] == "COMPLETED"
    with pytest.raises(ClientError) as e:
        start(workmail, org_id, addr)
    assert error_code(e) == "LimitExceededException", "one export per mailbox per 24 h"
    with pytest.raises(ClientError) as e:
        workmail.cancel_mailbox_export_job(ClientToken=uuid.uuid4().hex, OrganizationId=org_id, JobId=job_id)
    assert error_code(e) == "InvalidParameterException", "a COMPLETED job cannot be cancelled"
    for call in (workmail.describe_mailbox_export_job, ):
        with pytest.raises(ClientError) as e:
            call(OrganizationId=org_id, JobId=str(uuid.uuid4()))
        assert error_code(e) == "EntityNotFoundException"
    with pytest.raises(ClientError) as e:
        workmail.cancel_mailbox_export_job(ClientToken="t", OrganizationId=org_id, JobId=str(uuid.uuid4()))
    assert error_code(e) == "EntityNotFoundException"
    with pytest.raises(ClientError) as e:
        workmail.describe_mailbox_export_job(OrganizationId=org_id, JobId="bad_id!")
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        workmail.list_mailbox_export_jobs(OrganizationId="m-" + "0" * 32)
    assert error_code(e) == "OrganizationNotFoundException"


def test_an_unwritable_bucket_directory_fails_the_job(workmail, mailgate, org):
    org_id, domain = org
    uid, _ = new_user(workmail, org_id, domain)
    bucket = f"blocked-{uuid.uuid4().hex[:8]}"
    root = mailgate.data_dir / "exports"
    root.mkdir(exist_ok=True)
    (root / bucket).write_bytes(b"a file where the bucket directory should be")
    job_id = start(workmail, org_id, uid, bucket=bucket)
    d = wait_end(workmail, org_id, job_id)
    assert d["State"] == "FAILED"
    assert bucket in d["ErrorInfo"] and "Unable to write" in d["ErrorInfo"], d["ErrorInfo"]
    assert "EndTime" in d
    # A failed export does not use up the mailbox's daily export.
    (root / bucket).unlink()
    assert wait_end(workmail, org_id, start(workmail, org_id, uid, bucket=bucket))["State"] == "COMPLETED"


def test_list_pages_and_cancel_leaves_no_zip(workmail, mailgate, org):
    org_id, domain = org
    users = [new_user(workmail, org_id, domain) for _ in range(3)]
    ids = [start(workmail, org_id, uid, prefix=f"list/{n}") for n, (uid, _) in enumerate(users)]
    for job_id in ids:
        wait_end(workmail, org_id, job_id)
    seen, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        page = workmail.list_mailbox_export_jobs(OrganizationId=org_id, MaxResults=2, **kw)
        assert len(page["Jobs"]) <= 2
        seen += page["Jobs"]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(j["JobId"] for j in seen) == sorted(ids)
    assert [j["StartTime"] for j in seen] == sorted((j["StartTime"] for j in seen), reverse=True)
    assert all(j["State"] == "COMPLETED" and j["EstimatedProgress"] == 100 for j in seen)
    with pytest.raises(ClientError) as e:
        workmail.list_mailbox_export_jobs(OrganizationId=org_id, NextToken="garbage")
    assert error_code(e) == "InvalidParameterException"
    paginator = workmail.get_paginator("list_mailbox_export_jobs") if workmail.can_paginate(
        "list_mailbox_export_jobs") else None
    if paginator:
        assert sum(len(p["Jobs"]) for p in paginator.paginate(OrganizationId=org_id,
                                                               PaginationConfig={"PageSize": 1})) == 3

    # A mailbox big enough that the export is still RUNNING when the cancel lands.
    big_id, big = new_user(workmail, org_id, domain)
    blob = os.urandom(300_000).hex().encode()
    with imap(mailgate, big) as m:
        for i in range(60):
            raw = f"Subject: big {i}\r\n\r\n".encode() + blob + b"\r\n"
            assert m.append("INBOX", None, None, raw)[0] == "OK"
        m.logout()
    job_id = start(workmail, org_id, big_id, prefix="cancelled")
    workmail.cancel_mailbox_export_job(ClientToken=uuid.uuid4().hex, OrganizationId=org_id, JobId=job_id)
    d = workmail.describe_mailbox_export_job(OrganizationId=org_id, JobId=job_id)
    assert d["State"] == "CANCELLED" and "EndTime" in d
    # Cancelling again is fine; the job's files never appear under final names.
    workmail.cancel_mailbox_export_job(ClientToken=uuid.uuid4().hex, OrganizationId=org_id, JobId=job_id)
    out = mailgate.data_dir / "exports" / "exports-bucket" / "cancelled"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and out.exists() and any(job_id in p.name for p in out.iterdir()):
        time.sleep(0.05)
    assert not out.exists() or not any(job_id in p.name for p in out.iterdir()), list(out.iterdir())
    assert workmail.describe_mailbox_export_job(OrganizationId=org_id, JobId=job_id)["State"] == "CANCELLED"


def test_export_with_the_cli(aws, workmail, org):  # noqa: F811
    org_id, domain = org
    uid, _ = new_user(workmail, org_id, domain)
    job_id = aws("start-mailbox-export-job", "--organization-id", org_id, "--entity-id", uid,
                 "--role-arn", ROLE, "--kms-key-arn", KEY, "--s3-bucket-name", "cli-bucket",
                 "--s3-prefix", "cli", "--description", "from the CLI")["JobId"]
    d = wait_end(workmail, org_id, job_id)
    assert d["State"] == "COMPLETED"
    cli = aws("describe-mailbox-export-job", "--organization-id", org_id, "--job-id", job_id)
    assert cli["State"] == "COMPLETED" and cli["Description"] == "from the CLI"
    jobs = aws("list-mailbox-export-jobs", "--organization-id", org_id)["Jobs"]
    assert [j["JobId"] for j in jobs] == [job_id]


def test_a_job_running_when_the_daemon_dies_is_resumed_on_restart(tmp_path):
    """kill -9 in the middle of an export; the next start runs the job again from
    its first message: it ends COMPLETED with a whole zip, and no partial file."""
    from conftest import client_for, new_org, start_daemon, stop_daemon

    daemon = start_daemon(tmp_path)
    wm = client_for(daemon)
    org_id, domain = new_org(wm)
    uid, addr = new_user(wm, org_id, domain)
    blob = os.urandom(300_000).hex().encode()
    with imap(daemon, addr) as m:
        for i in range(100):
            assert m.append("INBOX", None, None, f"Subject: big {i}\r\n\r\n".encode() + blob + b"\r\n")[0] == "OK"
        m.logout()
    job_id = start(wm, org_id, uid, bucket="restart-bucket", prefix="p")
    out = daemon.data_dir / "exports" / "restart-bucket" / "p"
    part = out / f".{job_id}.zip.part"
    deadline = time.monotonic() + 30
    while not part.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    daemon.proc.kill()
    daemon.proc.wait(timeout=30)
    if (out / f"{job_id}.zip").exists():
        pytest.skip("the export finished before the kill landed")
    assert part.exists(), "killed while writing"
    (daemon.data_dir / "run" / "ports.json").unlink()

    again = start_daemon(tmp_path)
    try:
        wm = client_for(again)
        d = wait_end(wm, org_id, job_id)
        assert d["State"] == "COMPLETED", d.get("ErrorInfo")
        assert sorted(p.name for p in out.iterdir()) == sorted([f"{job_id}.json", f"{job_id}.zip"])
        summary = json.loads((out / f"{job_id}.json").read_text())
        assert summary["totalMessages"] == "100"
        assert summary["sha384Hash"] == hashlib.sha384((out / f"{job_id}.zip").read_bytes()).hexdigest()
        _, emls = read_zip(out / f"{job_id}.zip")
        assert len(emls) == 100
    finally:
        stop_daemon(again)
