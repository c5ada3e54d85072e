"""Retention policies against the real binary: boto3 PutRetentionPolicy,
GetDefaultRetentionPolicy and DeleteRetentionPolicy with the model's error
cases, the AWS CLI, and a policy enforced by the sweeper as an IMAP session sees
it (messages APPENDed with old internal dates leave INBOX with EXPUNGE and show
up in Deleted Items, or are gone), counted at /metrics."""

import email.message
import imaplib
import json
import os
import pathlib
import re
import subprocess
import sys
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import client_for, new_org, start_daemon, stop_daemon
from test_admin_boto3 import PASSWORD, code, new_user
from test_events import metrics
from test_smtp import tls_context

NO_ORG = "m-" + "0" * 32
DAY = 86_400
INBOX_30 = {"Name": "INBOX", "Action": "DELETE", "Period": 30}


def fails(expected, call, **kwargs):
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    assert code(e) == expected, e.value.response
    return e.value.response["Error"].get("Message", "")


def test_put_get_delete(workmail, org):
    org_id, _ = org
    fails("EntityNotFoundException", workmail.get_default_retention_policy, OrganizationId=org_id)
    workmail.put_retention_policy(OrganizationId=org_id, Name="default", Description="thirty days",
                                  FolderConfigurations=[INBOX_30])
    got = workmail.get_default_retention_policy(OrganizationId=org_id)
    policy_id = got["Id"]
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", policy_id)
    assert (got["Name"], got["Description"], got["FolderConfigurations"]) == ("default", "thirty days", [INBOX_30])

    # One policy per organization: a Put without an Id, or with its Id, replaces it.
    every = [
        {"Name": "INBOX", "Action": "NONE"},
        {"Name": "DELETED_ITEMS", "Action": "DELETE", "Period": 7},
        {"Name": "SENT_ITEMS", "Action": "DELETE", "Period": 730},
        {"Name": "DRAFTS", "Action": "PERMANENTLY_DELETE", "Period": 1},
        {"Name": "JUNK_EMAIL", "Action": "PERMANENTLY_DELETE", "Period": 10},
    ]
    workmail.put_retention_policy(OrganizationId=org_id, Name="every-folder", FolderConfigurations=every)
    got = workmail.get_default_retention_policy(OrganizationId=org_id)
    assert (got["Id"], got["Name"], got["FolderConfigurations"]) == (policy_id, "every-folder", every)
    assert "Description" not in got
    workmail.put_retention_policy(OrganizationId=org_id, Id=policy_id, Name="again", FolderConfigurations=[])
    got = workmail.get_default_retention_policy(OrganizationId=org_id)
    assert (got["Id"], got["Name"], got["FolderConfigurations"]) == (policy_id, "again", [])
    fails("LimitExceededException", workmail.put_retention_policy, OrganizationId=org_id, Id="second",
          Name="second", FolderConfigurations=[INBOX_30])

    # Delete: another Id is a no-op, the policy's Id removes it, and again is a no-op.
    workmail.delete_retention_policy(OrganizationId=org_id, Id="not-it")
    assert workmail.get_default_retention_policy(OrganizationId=org_id)["Id"] == policy_id
    workmail.delete_retention_policy(OrganizationId=org_id, Id=policy_id)
    fails("EntityNotFoundException", workmail.get_default_retention_policy, OrganizationId=org_id)
    workmail.delete_retention_policy(OrganizationId=org_id, Id=policy_id)

    # With an Id while none exists, the policy gets that Id.
    workmail.put_retention_policy(OrganizationId=org_id, Id="chosen_1", Name="n", FolderConfigurations=[INBOX_30])
    assert workmail.get_default_retention_policy(OrganizationId=org_id)["Id"] == "chosen_1"


@pytest.mark.parametrize(
    "change, says",
    [
        ({"Name": "has space"}, "Name"),
        ({"Id": "x" * 65}, "Id"),
        ({"Description": "d" * 257}, "Description"),
        ({"FolderConfigurations": [{"Name": "OUTBOX", "Action": "DELETE", "Period": 1}]}, "Name"),
        ({"FolderConfigurations": [{"Name": "INBOX", "Action": "ARCHIVE", "Period": 1}]}, "Action"),
        ({"FolderConfigurations": [{"Name": "INBOX", "Action": "DELETE", "Period": 731}]}, "Period"),
        ({"FolderConfigurations": [{"Name": "INBOX", "Action": "PERMANENTLY_DELETE"}]}, "Period"),
        ({"FolderConfigurations": [INBOX_30, {"Name": "INBOX", "Action": "NONE"}]}, "twice"),
    ],
)
def test_put_refuses_what_the_model_refuses(workmail, org, change, says):
    org_id, _ = org
    workmail.put_retention_policy(OrganizationId=org_id, Name="keep", FolderConfigurations=[INBOX_30])
    before = workmail.get_default_retention_policy(OrganizationId=org_id)
    args = {"OrganizationId": org_id, "Name": "new", "FolderConfigurations": [INBOX_30], **change}
    assert says in fails("InvalidParameterException", workmail.put_retention_policy, **args)
    after = workmail.get_default_retention_policy(OrganizationId=org_id)
    assert after == {**before, "ResponseMetadata": after["ResponseMetadata"]}, "a refused Put changes nothing"


def test_unknown_organizations_and_bad_ids(workmail):
    fails("OrganizationNotFoundException", workmail.put_retention_policy, OrganizationId=NO_ORG, Name="p",
          FolderConfigurations=[INBOX_30])
    fails("OrganizationNotFoundException", workmail.get_default_retention_policy, OrganizationId=NO_ORG)
    fails("OrganizationNotFoundException", workmail.delete_retention_policy, OrganizationId=NO_ORG, Id="p")
    org_id, _ = new_org(workmail)
    fails("InvalidParameterException", workmail.delete_retention_policy, OrganizationId=org_id, Id="bad id")


AWS = pathlib.Path(sys.executable).parent / "aws"


def test_retention_with_the_cli(mailgate, org):
    org_id, _ = org
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=mailgate.credentials, AWS_CONFIG_FILE=os.devnull)
    env.pop("AWS_PROFILE", None)

    def aws(*args):
        cmd = [str(AWS), "workmail", *args, "--organization-id", org_id, "--endpoint-url", mailgate.endpoint,
               "--ca-bundle", mailgate.ca, "--region", "local", "--profile", "mailgate", "--output", "json"]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)

    p = aws("put-retention-policy", "--name", "cli-policy",
            "--folder-configurations", "Name=JUNK_EMAIL,Action=PERMANENTLY_DELETE,Period=14", "Name=SENT_ITEMS,Action=NONE")
    assert p.returncode == 0, p.stderr
    p = aws("get-default-retention-policy")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got["Name"] == "cli-policy"
    assert got["FolderConfigurations"] == [
        {"Name": "JUNK_EMAIL", "Action": "PERMANENTLY_DELETE", "Period": 14},
        {"Name": "SENT_ITEMS", "Action": "NONE"},
    ]
    p = aws("delete-retention-policy", "--id", got["Id"])
    assert p.returncode == 0, p.stderr
    p = aws("get-default-retention-policy")
    assert p.returncode != 0 and "EntityNotFoundException" in p.stderr


# Enforcement, seen from IMAP.


@pytest.fixture(scope="module")
def sweeping(tmp_path_factory):
    """A daemon of its own that sweeps every second."""
    daemon = start_daemon(tmp_path_factory.mktemp("retention"), "[retention]\ninterval_secs = 1\nbatch_size = 2\n")
    yield daemon
    stop_daemon(daemon)


def old(subject):
    m = email.message.EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@example.test", "b@example.test", subject
    m.set_content("Retention test.\n")
    return m.as_bytes().replace(b"\n", b"\r\n")


def append(m, folder, subject, days_ago):
    when = imaplib.Time2Internaldate(time.time() - days_ago * DAY)
    typ, data = m.append(folder, None, when, old(subject))
    assert typ == "OK", data


def subjects(m, folder):
    typ, exists = m.select(folder, readonly=True)
    assert typ == "OK"
    if exists == [b"0"]:
        return set()
    typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    return {part[1].decode().strip().removeprefix("Subject: ") for part in data if isinstance(part, tuple)}


def wait_for(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_a_sweep_seen_from_imap(sweeping):
    wm = client_for(sweeping)
    org_id, domain = new_org(wm)
    name = f"r{uuid.uuid4().hex[:8]}"
    new_user(wm, org_id, name=name, domain=domain)
    address = f"{name}@{domain}"
    ctx = tls_context(sweeping)
    before = metrics(sweeping)
    with imaplib.IMAP4_SSL("localhost", sweeping.ports["imaps"], ssl_context=ctx) as m:
        m.login(address, PASSWORD)
        # Filled before the policy exists, so the first sweep that sees the policy
        # finds everything in place.
        for i in range(3):
            append(m, "INBOX", f"inbox-old-{i}", 100)
        append(m, "INBOX", "inbox-new", 10)
        append(m, '"Deleted Items"', "trash-ancient", 400)
        append(m, '"Deleted Items"', "trash-old", 100)
        append(m, '"Junk Email"', "junk-old", 3)
        append(m, '"Junk Email"', "junk-new", 0)
        append(m, '"Sent Items"', "sent-old", 1000)
        append(m, "Archive", "archive-old", 1000)
        typ, data = m.select("INBOX")
        assert (typ, data) == ("OK", [b"4"])

        wm.put_retention_policy(OrganizationId=org_id, Name="sweep", FolderConfigurations=[
            {"Name": "INBOX", "Action": "DELETE", "Period": 30},
            {"Name": "DELETED_ITEMS", "Action": "DELETE", "Period": 365},
            {"Name": "JUNK_EMAIL", "Action": "PERMANENTLY_DELETE", "Period": 1},
            {"Name": "SENT_ITEMS", "Action": "NONE"},
        ])

        # The selected INBOX hears EXPUNGE for the three old messages.
        expunged = []

        def heard_all():
            m.noop()
            expunged.extend(_drain(m, "EXPUNGE"))
            return len(expunged) >= 3

        assert wait_for(heard_all), f"EXPUNGE seen: {expunged}"
        typ, data = m.search(None, "ALL")
        assert data == [b"1"]
        typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"inbox-new" in data[0][1]

        # Deleted Items: the moved messages (100 days < 365), not the 400-day one
        # (DELETE in Deleted Items deletes for good); Junk keeps only the new one;
        # Sent (NONE) and Archive (no policy) keep everything.
        moved = {"inbox-old-0", "inbox-old-1", "inbox-old-2", "trash-old"}
        assert wait_for(lambda: subjects(m, '"Deleted Items"') == moved), subjects(m, '"Deleted Items"')
        assert wait_for(lambda: subjects(m, '"Junk Email"') == {"junk-new"}), subjects(m, '"Junk Email"')
        assert subjects(m, '"Sent Items"') == {"sent-old"}
        assert subjects(m, "Archive") == {"archive-old"}
        assert subjects(m, "INBOX") == {"inbox-new"}
        m.logout()

    after = metrics(sweeping)
    delta = lambda k: after.get(k, 0) - before.get(k, 0)  # noqa: E731
    assert delta("mailgate_retention_items_moved_total") == 3
    assert delta("mailgate_retention_items_deleted_total") == 2
    assert after["mailgate_retention_sweeps_total"] >= 1
    assert after["mailgate_retention_last_sweep_timestamp_seconds"] > time.time() - 60
    assert "mailgate_retention_last_sweep_duration_seconds" in after


def _drain(m, name):
    """Takes and returns the untagged `name` responses imaplib collected."""
    return m.untagged_responses.pop(name, [])
