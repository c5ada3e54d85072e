"""Personal access tokens against the real binary: created with the mailgate
extension `mailgate admin create-personal-access-token`, listed, read and deleted with
boto3 (pagination and the model's errors) and the AWS CLI, used as the password by
imaplib (IMAPS), smtplib (submission, STARTTLS) and EWS Basic auth, then deleted and
refused; an expired token refused; and the audit records those steps wrote."""

import base64
import imaplib
import json
import os
import pathlib
import smtplib
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from email.message import EmailMessage

import pytest
from botocore.exceptions import ClientError

from conftest import client_for, new_org, start_daemon, stop_daemon

PASSWORD = "Corr3ct-Horse-Battery"
AWS = pathlib.Path(sys.executable).parent / "aws"
ROOT = pathlib.Path(__file__).resolve().parents[2]
EWS_ON = "[ews]\nenabled = true\n"
GET_INBOX = b"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"
  xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">
<soap:Header><t:RequestServerVersion Version="Exchange2010_SP2"/></soap:Header>
<soap:Body><m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>
<m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder></soap:Body>
</soap:Envelope>"""


class World:
    """One daemon for the module (restarted once, by the expiry test)."""

    def __init__(self, root):
        self.root = root
        self.daemon = start_daemon(root, EWS_ON)
        self.wm = client_for(self.daemon)
        self.org, self.domain = new_org(self.wm)

    def user(self, name):
        uid = self.wm.create_user(OrganizationId=self.org, Name=name, DisplayName=name, Password=PASSWORD)["UserId"]
        self.wm.register_to_work_mail(OrganizationId=self.org, EntityId=uid, Email=f"{name}@{self.domain}")
        return uid, f"{name}@{self.domain}"

    def create_token(self, user, name, days=30, ok=True):
        """`mailgate admin create-personal-access-token`: the JSON answer, or stderr."""
        p = subprocess.run(
            [os.environ["MAILGATE_BIN"], "admin", "create-personal-access-token",
             "--data-dir", str(self.daemon.data_dir), "--organization-id", self.org,
             "--user", user, "--name", name, "--expires-in-days", str(days)],
            capture_output=True, text=True, timeout=60,
        )
        if ok:
            assert p.returncode == 0, p.stderr
            return json.loads(p.stdout)
        assert p.returncode == 1, p.stderr
        return p.stderr

    def tls(self):
        return ssl.create_default_context(cafile=self.daemon.ca)

    def ews_status(self, login, password):
        """The HTTP status of an EWS GetFolder(inbox) with Basic auth."""
        basic = base64.b64encode(f"{login}:{password}".encode()).decode()
        req = urllib.request.Request(
            f"https://localhost:{self.daemon.ports['https']}/EWS/Exchange.asmx", data=GET_INBOX,
            headers={"Content-Type": "text/xml; charset=utf-8", "Authorization": f"Basic {basic}"})
        try:
            with urllib.request.urlopen(req, context=self.tls(), timeout=30) as r:
                assert b"NoError" in r.read()
                return r.status
        except urllib.error.HTTPError as e:
            return e.code


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("pats"))
    yield w
    if w.daemon.proc.poll() is None:
        stop_daemon(w.daemon)


def test_the_cli_extension_prints_the_token_once(world):
    uid, _ = world.user("carl")
    out = world.create_token("carl", "laptop", days=7)
    assert out["Token"].startswith("mgpat.") and out["PersonalAccessTokenId"] in out["Token"]
    assert out["UserId"] == uid and out["Name"] == "laptop" and out["Scopes"] == ["IMAP", "SMTP", "EWS"]
    assert abs(out["ExpiresTime"] - out["DateCreated"] - 7 * 86400) < 1
    meta = world.wm.get_personal_access_token_metadata(
        OrganizationId=world.org, PersonalAccessTokenId=out["PersonalAccessTokenId"])
    assert "Token" not in meta and meta["Name"] == "laptop"
    # The limits: a lifetime outside 1-3653 days, a name with '<'.
    assert "InvalidParameterException" in world.create_token("carl", "x", days=0, ok=False)
    assert "InvalidParameterException" in world.create_token("carl", "a<b", ok=False)
    assert "EntityNotFoundException" in world.create_token("nobody", "x", ok=False)


def test_boto3_lists_pages_gets_and_deletes(world):
    uid, _ = world.user("dora")
    other, _ = world.user("eve")
    ids = [world.create_token("dora", f"t{i}")["PersonalAccessTokenId"] for i in range(3)]
    world.create_token("eve", "eve's")
    page = world.wm.list_personal_access_tokens(OrganizationId=world.org, UserId=uid, MaxResults=2)
    assert [t["PersonalAccessTokenId"] for t in page["PersonalAccessTokenSummaries"]] == ids[:2]
    rest = world.wm.list_personal_access_tokens(
        OrganizationId=world.org, UserId=uid, MaxResults=2, NextToken=page["NextToken"])
    assert [t["PersonalAccessTokenId"] for t in rest["PersonalAccessTokenSummaries"]] == ids[2:]
    assert "NextToken" not in rest
    paginator = world.wm.get_paginator("list_personal_access_tokens")
    seen = [t["PersonalAccessTokenId"]
            for p in paginator.paginate(OrganizationId=world.org, UserId="dora", PaginationConfig={"PageSize": 1})
            for t in p["PersonalAccessTokenSummaries"]]
    assert seen == ids
    everyone = world.wm.list_personal_access_tokens(OrganizationId=world.org)["PersonalAccessTokenSummaries"]
    assert {t["UserId"] for t in everyone} >= {uid, other}
    meta = world.wm.get_personal_access_token_metadata(OrganizationId=world.org, PersonalAccessTokenId=ids[0])
    assert meta["UserId"] == uid and meta["Name"] == "t0"
    assert meta["ExpiresTime"] > meta["DateCreated"] and "DateLastUsed" not in meta
    world.wm.delete_personal_access_token(OrganizationId=world.org, PersonalAccessTokenId=ids[0])
    # Deleting an unknown token succeeds: the model has no not-found error for it.
    world.wm.delete_personal_access_token(OrganizationId=world.org, PersonalAccessTokenId=ids[0])

    def code(call, **kw):
        with pytest.raises(ClientError) as e:
            call(**kw)
        return e.value.response["Error"]["Code"]

    assert code(world.wm.get_personal_access_token_metadata,
                OrganizationId=world.org, PersonalAccessTokenId=ids[0]) == "ResourceNotFoundException"
    assert code(world.wm.list_personal_access_tokens,
                OrganizationId=world.org, UserId="nobody") == "EntityNotFoundException"
    assert code(world.wm.list_personal_access_tokens,
                OrganizationId=world.org, NextToken="garbage") == "InvalidParameterException"
    missing = "m-" + "0" * 32
    assert code(world.wm.list_personal_access_tokens, OrganizationId=missing) == "OrganizationNotFoundException"
    assert code(world.wm.get_personal_access_token_metadata,
                OrganizationId=missing, PersonalAccessTokenId=ids[1]) == "OrganizationNotFoundException"
    assert code(world.wm.delete_personal_access_token,
                OrganizationId=world.org, PersonalAccessTokenId="not.valid") == "InvalidParameterException"


def test_the_aws_cli_lists_and_reads_tokens(world):
    uid, _ = world.user("fred")
    tid = world.create_token("fred", "cli")["PersonalAccessTokenId"]
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=world.daemon.credentials, AWS_CONFIG_FILE=os.devnull)
    env.pop("AWS_PROFILE", None)

    def aws(*args):
        cmd = [str(AWS), "workmail", *args, "--endpoint-url", world.daemon.endpoint, "--ca-bundle",
               world.daemon.ca, "--region", "local", "--profile", "mailgate", "--output", "json"]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout) if p.stdout.strip() else {}

    listed = aws("list-personal-access-tokens", "--organization-id", world.org, "--user-id", uid)
    assert [t["PersonalAccessTokenId"] for t in listed["PersonalAccessTokenSummaries"]] == [tid]
    meta = aws("get-personal-access-token-metadata", "--organization-id", world.org,
               "--personal-access-token-id", tid)
    assert meta["Name"] == "cli" and meta["Scopes"] == ["IMAP", "SMTP", "EWS"]
    aws("delete-personal-access-token", "--organization-id", world.org, "--personal-access-token-id", tid)
    assert aws("list-personal-access-tokens", "--organization-id", world.org,
               "--user-id", uid)["PersonalAccessTokenSummaries"] == []


def test_a_token_is_the_password_for_imap_smtp_and_ews_until_deleted(world):
    _, addr = world.user("gina")
    out = world.create_token(addr, "mail client")
    token, tid = out["Token"], out["PersonalAccessTokenId"]
    ctx = world.tls()
    with imaplib.IMAP4_SSL("localhost", world.daemon.ports["imaps"], ssl_context=ctx) as m:
        assert m.login(addr, token)[0] == "OK"
        m.logout()
    subject = f"pat {uuid.uuid4().hex}"
    with smtplib.SMTP("localhost", world.daemon.ports["submission"]) as s:
        s.starttls(context=ctx)
        s.login(addr, token)
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = addr, addr, subject
        msg.set_content("sent with a personal access token\n")
        s.send_message(msg)
    assert world.ews_status(addr, token) == 200
    meta = world.wm.get_personal_access_token_metadata(OrganizationId=world.org, PersonalAccessTokenId=tid)
    assert meta["DateLastUsed"] >= meta["DateCreated"]
    # A session opened with the token, then the token deleted: the session ends on
    # its next command, and new logins are refused.
    live = imaplib.IMAP4_SSL("localhost", world.daemon.ports["imaps"], ssl_context=ctx)
    live.login(addr, token)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        live.select("INBOX")
        if live.search(None, "SUBJECT", f'"{subject}"')[1][0]:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the message sent with the token was not delivered")
    world.wm.delete_personal_access_token(OrganizationId=world.org, PersonalAccessTokenId=tid)
    with pytest.raises((imaplib.IMAP4.abort, imaplib.IMAP4.error, OSError)):
        live.noop()
        live.noop()
    with imaplib.IMAP4_SSL("localhost", world.daemon.ports["imaps"], ssl_context=ctx) as m:
        with pytest.raises(imaplib.IMAP4.error):
            m.login(addr, token)
    with smtplib.SMTP("localhost", world.daemon.ports["submission"]) as s:
        s.starttls(context=ctx)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login(addr, token)
    # EWS had remembered the login; the deletion ends that too.
    assert world.ews_status(addr, token) == 401
    # The password still works.
    with imaplib.IMAP4_SSL("localhost", world.daemon.ports["imaps"], ssl_context=ctx) as m:
        assert m.login(addr, PASSWORD)[0] == "OK"


def test_an_expired_token_is_refused_and_every_step_was_audited(world):
    _, addr = world.user("hank")
    out = world.create_token("hank", "old phone", days=1)
    tid = out["PersonalAccessTokenId"]
    # Age it: stop the daemon, move its expiry into the past in the store, restart.
    stop_daemon(world.daemon)
    db = sqlite3.connect(world.daemon.data_dir / "store.sqlite")
    with db:
        changed = db.execute(
            "UPDATE directory SET json = json_set(json, '$.expires', ?) "
            "WHERE kind = 'personal_access_token' AND id = ?",
            (int(time.time() * 1000) - 1000, tid),
        ).rowcount
    db.close()
    assert changed == 1
    # The stopped daemon's ports file would be read before the new one replaced it.
    (world.daemon.data_dir / "run" / "ports.json").unlink(missing_ok=True)
    world.daemon = start_daemon(world.root, EWS_ON)
    world.wm = client_for(world.daemon)
    with imaplib.IMAP4_SSL("localhost", world.daemon.ports["imaps"], ssl_context=world.tls()) as m:
        with pytest.raises(imaplib.IMAP4.error):
            m.login(addr, out["Token"])
    # Stopping flushes the audit sink.
    stop_daemon(world.daemon)
    records = [json.loads(line)
               for line in (world.daemon.data_dir / "events" / "audit.jsonl").read_text().splitlines()]
    pats = [r for r in records if r["log_type"] == "personal_access_token"]
    assert {(r["name"], r["action"]) for r in pats} >= {
        ("mail client", "create"), ("mail client", "delete"), ("old phone", "create"), ("cli", "delete")}
    assert all(r["source_ip"] == "127.0.0.1" and r["scopes"] for r in pats)
    auth = [r for r in records if r["log_type"] == "authentication" and "personal_access_token_id" in r]
    reasons = {(r["protocol"], r["auth_successful"], r.get("auth_failed_reason")) for r in auth}
    assert {("IMAP", True, None), ("SMTP", True, None), ("EWS", True, None)} <= reasons
    assert ("IMAP", False, "unknown personal access token") in reasons
    assert ("SMTP", False, "unknown personal access token") in reasons
    assert ("EWS", False, "unknown personal access token") in reasons
    expired = [r for r in auth if r.get("auth_failed_reason") == "personal access token expired"]
    assert [r["personal_access_token_id"] for r in expired] == [tid]
    jsonschema = pytest.importorskip("jsonschema")
    for r in pats + auth:
        schema = json.loads((ROOT / "schemas" / "events" /
                             f"audit-{r['log_type'].replace('_', '-')}.schema.json").read_text())
        jsonschema.validate(r, schema, cls=jsonschema.Draft202012Validator)
