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
