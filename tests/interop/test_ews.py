"""exchangelib against mailgate's EWS over the real HTTPS listener, the daemon's CA
verified: Basic auth reading and changing mail delivered over SMTP, and the WorkMail
Administrator Guide's impersonation example (a requests AuthBase that puts a role
token from boto3's assume_impersonation_role on every request), unchanged but for
the endpoint, with a READ_ONLY role's write refused."""

import smtplib
import uuid

import pytest
import requests
from exchangelib import (
    DELEGATE,
    IMPERSONATION,
    Account,
    Configuration,
    Credentials,
    FaultTolerance,
    Mailbox,
    Message,
    Version,
)
from exchangelib.errors import ErrorAccessDenied
from exchangelib.protocol import BaseProtocol
from exchangelib.version import EXCHANGE_2010_SP2

from conftest import client_for, new_org, start_daemon, stop_daemon
from test_smtp import PASSWORD, delivered_to, message, new_user, tls_context


@pytest.fixture(scope="module")
def ews_daemon(tmp_path_factory):
    daemon = start_daemon(tmp_path_factory.mktemp("ews"), "[ews]\nenabled = true\n")
    ca = daemon.ca

    class VerifyWithDaemonCa(requests.adapters.HTTPAdapter):
        def send(self, *args, **kwargs):
            kwargs["verify"] = ca
            return super().send(*args, **kwargs)

    BaseProtocol.HTTP_ADAPTER_CLS = VerifyWithDaemonCa
    yield daemon
    stop_daemon(daemon)


def ews_url(daemon):
    return f"https://localhost:{daemon.ports['https']}/EWS/Exchange.asmx"


def send(daemon, sender, to, subject):
    with smtplib.SMTP_SSL("localhost", daemon.ports["submissions"], context=tls_context(daemon)) as s:
        s.login(sender, PASSWORD)
        assert s.send_message(message(sender, to, subject)) == {}
    assert delivered_to(daemon, to, subject)


def basic_account(daemon, address):
    config = Configuration(
        service_endpoint=ews_url(daemon),
        credentials=Credentials(address, PASSWORD),
        auth_type="basic",
        retry_policy=FaultTolerance(max_wait=5),
    )
    return Account(address, config=config, autodiscover=False, access_type=DELEGATE)


def test_basic_auth_reads_filters_and_changes_mail_sent_over_smtp(ews_daemon):
    wm = client_for(ews_daemon)
    org_id, domain = new_org(wm)
    _, alice = new_user(wm, org_id, domain)
    _, bob = new_user(wm, org_id, domain)
    subjects = [f"ews {n} {uuid.uuid4().hex[:6]}" for n in range(3)]
    for s in subjects:
        send(ews_daemon, alice, bob, s)

    account = basic_account(ews_daemon, bob)
    assert account.inbox.total_count == 3
    assert account.inbox.unread_count == 3
    newest = list(account.inbox.all().order_by("-datetime_received")[:10])
    assert [m.subject for m in newest] == list(reversed(subjects))
    first = newest[-1]
    assert first.sender.email_address == alice
    assert "Hello from an interop test." in first.body
    assert first.mime_content.startswith(b"From:") or b"Subject:" in first.mime_content

    only = list(account.inbox.filter(subject=subjects[1]))
    assert [m.subject for m in only] == [subjects[1]]

    first.is_read = True
    first.save(update_fields=["is_read"])
    account.inbox.refresh()
    assert account.inbox.unread_count == 2

    archive = account.msg_folder_root / "Archive"
    first.move(archive)
    account.inbox.refresh()
    assert account.inbox.total_count == 2
    assert [m.subject for m in archive.all()] == [subjects[0]]

    folder = account.inbox.__class__(parent=account.inbox, name=f"sub {uuid.uuid4().hex[:6]}")
    folder.save()
    assert folder.name in [f.name for f in account.inbox.children]
    folder.delete()


class ImpersonationRoleAuth(requests.auth.AuthBase):
    """The Administrator Guide's example, as written there: one token from
    assume_impersonation_role, sent as a Bearer token on every request."""

    client = None
    organization_id = None
    role_id = None

    def __init__(self):
        response = self.client.assume_impersonation_role(
            OrganizationId=self.organization_id, ImpersonationRoleId=self.role_id
        )
        self.token = response["Token"]

    def __call__(self, r):
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r


def role(wm, org_id, role_type):
    return wm.create_impersonation_role(
        OrganizationId=org_id,
        Name=f"r{uuid.uuid4().hex[:8]}",
        Type=role_type,
        Rules=[{"ImpersonationRuleId": "all", "Name": "all", "Effect": "ALLOW"}],
    )["ImpersonationRoleId"]


def impersonated_account(daemon, wm, org_id, role_id, address):
    from exchangelib import transport
    from exchangelib.protocol import CachingProtocol

    # exchangelib keeps one session per endpoint: a script uses one role, so a
    # second role here needs a fresh session (and a fresh token).
    CachingProtocol.clear_cache()
    ImpersonationRoleAuth.client = wm
    ImpersonationRoleAuth.organization_id = org_id
    ImpersonationRoleAuth.role_id = role_id
    transport.AUTH_TYPE_MAP["ImpersonationRoleAuth"] = ImpersonationRoleAuth
    config = Configuration(
        service_endpoint=ews_url(daemon),
        version=Version(build=EXCHANGE_2010_SP2),
        auth_type="ImpersonationRoleAuth",
    )
    return Account(primary_smtp_address=address, config=config, autodiscover=False, access_type=IMPERSONATION)


def test_workmail_guide_impersonation_example_reads_and_read_only_cannot_write(ews_daemon):
    wm = client_for(ews_daemon)
    org_id, domain = new_org(wm)
    _, alice = new_user(wm, org_id, domain)
    _, bob = new_user(wm, org_id, domain)
    subject = f"impersonated {uuid.uuid4().hex[:6]}"
    send(ews_daemon, alice, bob, subject)

    full = impersonated_account(ews_daemon, wm, org_id, role(wm, org_id, "FULL_ACCESS"), bob)
    items = list(full.inbox.all().order_by("-datetime_received")[:10])
    assert [m.subject for m in items] == [subject]

    # The guide's send: one SMTP submission (alice's Inbox gets it, bob's Sent Items keeps it).
    reply = f"reply {uuid.uuid4().hex[:6]}"
    Message(account=full, subject=reply, body="Sent over EWS.", to_recipients=[Mailbox(email_address=alice)]).send_and_save()
    assert delivered_to(ews_daemon, alice, reply)
    assert [m.subject for m in full.sent.all()] == [reply]

    read_only = impersonated_account(ews_daemon, wm, org_id, role(wm, org_id, "READ_ONLY"), bob)
    item = list(read_only.inbox.all())[0]
    assert item.subject == subject
    item.is_read = True
    with pytest.raises(ErrorAccessDenied):
        item.save(update_fields=["is_read"])


def test_mail_tips_and_the_wsdl_answer_as_exchange_does(ews_daemon):
    from exchangelib.properties import SendingAs
    from exchangelib.services import GetMailTips

    wm = client_for(ews_daemon)
    org_id, domain = new_org(wm)
    _, alice = new_user(wm, org_id, domain)
    account = basic_account(ews_daemon, alice)

    # exchangelib's own property: mail tips for mail to oneself.
    tips = account.mail_tips
    assert tips.recipient_address.email_address == alice
    assert tips.invalid_recipient is False
    assert tips.mailbox_full is False
    assert tips.max_message_size > 0

    # An address of the organization's domain that names nobody would bounce.
    tips = GetMailTips(protocol=account.protocol).get(
        sending_as=SendingAs(email_address=alice),
        recipients=[Mailbox(email_address=f"nobody@{domain}")],
        mail_tips_requested="All",
    )
    assert tips.invalid_recipient is True

    # The WSDL needs a login and names the endpoint; the endpoint's GET leads to it.
    wsdl = ews_url(ews_daemon).replace("Exchange.asmx", "Services.wsdl")
    assert requests.get(wsdl, verify=ews_daemon.ca).status_code == 401
    r = requests.get(wsdl, auth=(alice, PASSWORD), verify=ews_daemon.ca)
    assert r.status_code == 200
    assert f'location="{ews_url(ews_daemon)}"' in r.text
    r = requests.get(ews_url(ews_daemon), auth=(alice, PASSWORD), verify=ews_daemon.ca)
    assert r.status_code == 200 and r.url == wsdl


def test_properties_attachments_replies_and_export_round_trip(ews_daemon):
    """What migration and automation scripts do with exchangelib beyond reading:
    EWS-only and custom properties, attachments added and removed one by one, a
    reply delivered over the real submission path, and export/upload of an item."""
    from exchangelib import ExtendedProperty, FileAttachment, HTMLBody, ItemAttachment

    class Tag(ExtendedProperty):
        distinguished_property_set_id = "PublicStrings"
        property_name = "mailgate-test-tag"
        property_type = "StringArray"

    wm = client_for(ews_daemon)
    org_id, domain = new_org(wm)
    _, alice = new_user(wm, org_id, domain)
    _, bob = new_user(wm, org_id, domain)
    account = basic_account(ews_daemon, alice)
    Message.register("tag", Tag)
    try:
        draft = Message(
            account=account,
            folder=account.drafts,
            subject=f"props {uuid.uuid4().hex[:6]}",
            body=HTMLBody("<p>draft</p>"),
            sensitivity="Confidential",
            reminder_is_set=True,
            reminder_minutes_before_start=42,
            is_response_requested=True,
            categories=["Blue"],
            tag=["a", "b c"],
            to_recipients=[Mailbox(email_address=bob)],
        )
        draft.attach(FileAttachment(name="one.txt", content=b"1"))
        draft.save()
        fresh = account.drafts.get(id=draft.id)
        assert (fresh.sensitivity, fresh.reminder_is_set, fresh.reminder_minutes_before_start) == (
            "Confidential",
            True,
            42,
        )
        assert fresh.is_response_requested and fresh.categories == ["Blue"]
        assert fresh.tag == ["a", "b c"]
        assert account.drafts.filter(reminder_minutes_before_start=42).count() == 1

        # Attachments: add two more (one an item), remove them one at a time.
        inner = Message(account=account, subject="inner", body="inside")
        fresh.attach([FileAttachment(name="two.txt", content=b"2"), ItemAttachment(name="it", item=inner)])
        fresh = account.drafts.get(id=draft.id)
        names = sorted(a.name for a in fresh.attachments)
        assert names == ["it", "one.txt", "two.txt"]
        by_name = {a.name: a for a in fresh.attachments}
        assert by_name["two.txt"].content == b"2"
        assert by_name["it"].item.subject == "inner"
        for a in [by_name["one.txt"], by_name["two.txt"]]:
            fresh.detach(a)
        fresh = account.drafts.get(id=draft.id)
        assert [a.name for a in fresh.attachments] == ["it"]
        assert fresh.tag == ["a", "b c"], "properties survive the rewrites"

        # Export and upload recreate the item whole under a new id.
        data = account.export([fresh])
        new_id, _ = account.upload([(account.drafts, data[0])])[0]
        copy = account.drafts.get(id=new_id)
        assert copy.id != fresh.id and copy.subject == fresh.subject
        assert copy.tag == ["a", "b c"] and copy.reminder_minutes_before_start == 42

        # Sent with a saved copy: the Sent Items copy keeps what was set.
        subject = f"sent props {uuid.uuid4().hex[:6]}"
        Message(account=account, subject=subject, body="x", tag=["s"], reminder_is_set=True,
                reminder_minutes_before_start=7, to_recipients=[Mailbox(email_address=bob)]).send_and_save()
        sent = account.sent.get(subject=subject)
        assert sent.tag == ["s"] and sent.reminder_minutes_before_start == 7
    finally:
        Message.deregister("tag")

    # A reply to mail delivered over SMTP goes out over the submission path.
    subject = f"ask {uuid.uuid4().hex[:6]}"
    send(ews_daemon, bob, alice, subject)
    asked = account.inbox.get(subject=subject)
    asked.reply(subject=f"RE: {subject}", body="answer", to_recipients=[Mailbox(email_address=bob)])
    assert delivered_to(ews_daemon, bob, f"RE: {subject}")
    assert account.sent.filter(subject=f"RE: {subject}").count() == 1


def test_an_ews_flag_change_reaches_imap_idle_within_100_ms(ews_daemon):
    """One store under both protocols: a message marked read and flagged with
    exchangelib shows in an imaplib IDLE session as a FETCH within 100 ms (median of
    three changes; each under a second)."""
    import imaplib
    import time

    wm = client_for(ews_daemon)
    org_id, domain = new_org(wm)
    _, alice = new_user(wm, org_id, domain)
    _, bob = new_user(wm, org_id, domain)
    subject = f"idle {uuid.uuid4().hex[:6]}"
    send(ews_daemon, alice, bob, subject)
    account = basic_account(ews_daemon, bob)
    item = account.inbox.get(subject=subject)
    ctx = tls_context(ews_daemon)
    with imaplib.IMAP4_SSL("localhost", ews_daemon.ports["imaps"], ssl_context=ctx) as m:
        m.login(bob, PASSWORD)
        assert m.select("INBOX")[0] == "OK"
        tag = m._new_tag()
        m.send(tag + b" IDLE\r\n")
        assert m.readline().startswith(b"+")
        took = []
        for is_read in [True, False, True]:
            started = time.monotonic()
            item.is_read = is_read
            item.save(update_fields=["is_read"])
            line = m.readline()
            took.append(time.monotonic() - started)
            assert line.startswith(b"* 1 FETCH (") and (b"\\Seen" in line) == is_read, line
        m.send(b"DONE\r\n")
        assert m.readline().startswith(tag + b" OK")
    took.sort()
    assert took[1] < 0.1 and took[2] < 1.0, took


SOAP_NS = {
    "s": "http://schemas.xmlsoap.org/soap/envelope/",
    "m": "http://schemas.microsoft.com/exchange/services/2006/messages",
    "t": "http://schemas.microsoft.com/exchange/services/2006/types",
}


def raw_soap(daemon, address, body):
    """POSTs `body` as DavMail and Evolution do (their own envelopes, Basic auth,
    text/xml), the daemon's CA verified; returns the parsed answer after the checks
    these clients make: HTTP 200 and DavMail's exact content type."""
    import xml.etree.ElementTree as ET

    r = requests.post(
        ews_url(daemon),
        data=body.encode(),
        auth=(address, PASSWORD),
        headers={"Content-Type": "text/xml; charset=utf-8"},
        verify=daemon.ca,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/xml; charset=utf-8"
    return ET.fromstring(r.content)


def success(root, op):
    msg = root.find(f".//m:{op}ResponseMessage", SOAP_NS)
    assert msg is not None and msg.get("ResponseClass") == "Success", root
    return msg


def test_davmail_and_evolution_first_requests_over_the_listener(ews_daemon):
    """The requests DavMail and Evolution open a session with, as their code writes
    them (the reference's list), over the real TLS listener."""
    wm = client_for(ews_daemon)
    org_id, domain = new_org(wm)
    _, alice = new_user(wm, org_id, domain)
    ns = 'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" ' \
         'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" ' \
         'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"'

    def davmail(body, version=None):
        header = f'<soap:Header><t:RequestServerVersion Version="{version}"/></soap:Header>' if version else ""
        return f"<soap:Envelope {ns}>{header}<soap:Body>{body}</soap:Body></soap:Envelope>"

    # DavMail: GetFolder root with no SOAP header, learning the version from it.
    root = raw_soap(ews_daemon, alice, davmail(
        '<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>'
        '<m:FolderIds><t:DistinguishedFolderId Id="root"/></m:FolderIds></m:GetFolder>'))
    info = root.find(".//t:ServerVersionInfo", SOAP_NS)
    assert (info.get("MajorVersion"), info.get("MinorVersion")) == ("15", "1")
    folder_id = success(root, "GetFolder").find(".//t:FolderId", SOAP_NS).get("Id")
    # ConvertId with its made-up mailbox: the answer names the user.
    root = raw_soap(ews_daemon, alice, davmail(
        '<m:ConvertId DestinationFormat="EwsId"><m:SourceIds>'
        f'<t:AlternateId Format="EwsId" Id="{folder_id}" Mailbox="blah@blah.com"/>'
        '</m:SourceIds></m:ConvertId>', "Exchange2013_SP1"))
    alt = success(root, "ConvertId").find("m:AlternateId", SOAP_NS)
    assert alt.get("Mailbox") == alice
    for name in ["inbox", "sentitems", "drafts", "deleteditems", "junkemail", "outbox"]:
        root = raw_soap(ews_daemon, alice, davmail(
            '<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>'
            f'<m:FolderIds><t:DistinguishedFolderId Id="{name}"/></m:FolderIds></m:GetFolder>',
            "Exchange2013_SP1"))
        assert success(root, "GetFolder").find(".//t:FolderId", SOAP_NS) is not None, name

    # Evolution: SOAP-ENV prefix, the types namespace as default inside the operation.
    def evolution(version, op, inner):
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope '
            'xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><SOAP-ENV:Header>'
            '<types:RequestServerVersion xmlns:types="http://schemas.microsoft.com/exchange/services/2006/types" '
            f'Version="{version}"/></SOAP-ENV:Header><SOAP-ENV:Body '
            'xmlns:messages="http://schemas.microsoft.com/exchange/services/2006/messages">'
            f'<messages:{op} xmlns="http://schemas.microsoft.com/exchange/services/2006/types">'
            f"{inner}</messages:{op}></SOAP-ENV:Body></SOAP-ENV:Envelope>\n"
        )

    root = raw_soap(ews_daemon, alice, evolution(
        "Exchange2007_SP1", "GetFolder",
        "<messages:FolderShape><BaseShape>Default</BaseShape></messages:FolderShape>"
        '<messages:FolderIds><DistinguishedFolderId Id="inbox"/></messages:FolderIds>'))
    assert success(root, "GetFolder").find(".//t:DisplayName", SOAP_NS).text == "Inbox"
    root = raw_soap(ews_daemon, alice, evolution(
        "Exchange2013", "SyncFolderHierarchy",
        "<messages:FolderShape><BaseShape>AllProperties</BaseShape></messages:FolderShape>"))
    m = success(root, "SyncFolderHierarchy")
    assert m.find("m:SyncState", SOAP_NS).text
    assert len(m.find("m:Changes", SOAP_NS)) >= 6
