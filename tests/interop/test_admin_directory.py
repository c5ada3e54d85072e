"""boto3 against the directory updates of issue 21: UpdateGroup, UpdateResource,
UpdatePrimaryEmailAddress (then mail to the old and the new address, IMAP login
with the new one, events naming it), DescribeEntity and ListGroupsForEntity,
with pagination, filters, the model's error codes, a restart in between, and the
global address list EWS ResolveNames shows."""

import imaplib
import json
import smtplib
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import client_for, new_org, start_daemon, stop_daemon
from test_admin_boto3 import PASSWORD, all_pages, code, new_user
from test_ews import basic_account, ews_daemon  # noqa: F401 (a fixture)
from test_smtp import delivered_to, message, tls_context

NO_ORG = "m-" + "0" * 32


def fails(expected, call, *args, **kwargs):
    """Calls and asserts the AWS error code boto3 reports."""
    with pytest.raises(ClientError) as e:
        call(*args, **kwargs)
    assert code(e) == expected, e.value.response
    return e.value.response["Error"].get("Message", "")


# UpdateGroup


def test_update_group_hides_and_shows(workmail, org):
    org_id, domain = org
    gid = workmail.create_group(OrganizationId=org_id, Name="crew")["GroupId"]
    assert workmail.describe_group(OrganizationId=org_id, GroupId=gid)["HiddenFromGlobalAddressList"] is False
    assert workmail.update_group(OrganizationId=org_id, GroupId=gid, HiddenFromGlobalAddressList=True)[
        "ResponseMetadata"
    ]["HTTPStatusCode"] == 200
    assert workmail.describe_group(OrganizationId=org_id, GroupId="crew")["HiddenFromGlobalAddressList"] is True
    # Without the member nothing changes; by email works once registered.
    workmail.register_to_work_mail(OrganizationId=org_id, EntityId=gid, Email=f"crew@{domain}")
    workmail.update_group(OrganizationId=org_id, GroupId=f"crew@{domain}")
    assert workmail.describe_group(OrganizationId=org_id, GroupId=gid)["HiddenFromGlobalAddressList"] is True
    workmail.update_group(OrganizationId=org_id, GroupId=f"CREW@{domain}", HiddenFromGlobalAddressList=False)
    assert workmail.describe_group(OrganizationId=org_id, GroupId=gid)["HiddenFromGlobalAddressList"] is False

    fails("EntityNotFoundException", workmail.update_group, OrganizationId=org_id, GroupId="nobody")
    fails("InvalidParameterException", workmail.update_group, OrganizationId=org_id, GroupId="x" * 257)
    fails("OrganizationNotFoundException", workmail.update_group, OrganizationId=NO_ORG, GroupId=gid)
    # A user is not a group.
    uid = new_user(workmail, org_id, domain=domain)
    fails("EntityNotFoundException", workmail.update_group, OrganizationId=org_id, GroupId=uid)
    workmail.deregister_from_work_mail(OrganizationId=org_id, EntityId=gid)
    workmail.delete_group(OrganizationId=org_id, GroupId=gid)
    fails("EntityStateException", workmail.update_group, OrganizationId=org_id, GroupId=gid,
          HiddenFromGlobalAddressList=True)


# UpdateResource


def test_update_resource_every_member(workmail, org):
    org_id, domain = org
    rid = workmail.create_resource(OrganizationId=org_id, Name="room1", Type="ROOM", Description="Big room")[
        "ResourceId"
    ]
    workmail.register_to_work_mail(OrganizationId=org_id, EntityId=rid, Email=f"room1@{domain}")
    booking = {"AutoAcceptRequests": True, "AutoDeclineRecurringRequests": True, "AutoDeclineConflictingRequests": False}
    workmail.update_resource(
        OrganizationId=org_id, ResourceId=rid, Name="hall", Type="EQUIPMENT", Description="Projector",
        BookingOptions=booking, HiddenFromGlobalAddressList=True,
    )
    r = workmail.describe_resource(OrganizationId=org_id, ResourceId="hall")
    assert (r["ResourceId"], r["Name"], r["Type"], r["Description"]) == (rid, "hall", "EQUIPMENT", "Projector")
    assert r["BookingOptions"] == booking and r["HiddenFromGlobalAddressList"] is True
    assert r["Email"] == f"room1@{domain}", "a rename keeps the address"
    fails("EntityNotFoundException", workmail.describe_resource, OrganizationId=org_id, ResourceId="room1")
    listed = workmail.list_resources(OrganizationId=org_id, Filters={"NamePrefix": "ha"})["Resources"]
    assert [(x["Id"], x["Type"], x["Description"]) for x in listed] == [(rid, "EQUIPMENT", "Projector")]

    # Only what is named changes; an empty Description clears it.
    workmail.update_resource(OrganizationId=org_id, ResourceId=f"room1@{domain}", Description="")
    r = workmail.describe_resource(OrganizationId=org_id, ResourceId=rid)
    assert "Description" not in r and r["Name"] == "hall" and r["BookingOptions"] == booking
    workmail.update_resource(OrganizationId=org_id, ResourceId=rid, HiddenFromGlobalAddressList=False, Type="ROOM")
    r = workmail.describe_resource(OrganizationId=org_id, ResourceId=rid)
    assert (r["HiddenFromGlobalAddressList"], r["Type"], r["BookingOptions"]) == (False, "ROOM", booking)


def test_update_resource_booking_needs_a_delegate_or_auto_accept(workmail, org):
    org_id, domain = org
    rid = workmail.create_resource(OrganizationId=org_id, Name="van", Type="EQUIPMENT")["ResourceId"]
    before = workmail.describe_resource(OrganizationId=org_id, ResourceId=rid)["BookingOptions"]
    assert before == {"AutoAcceptRequests": True, "AutoDeclineRecurringRequests": False,
                      "AutoDeclineConflictingRequests": True}
    manual = {"AutoAcceptRequests": False, "AutoDeclineConflictingRequests": True}
    fails("InvalidConfigurationException", workmail.update_resource, OrganizationId=org_id, ResourceId=rid,
          BookingOptions=manual, Name="van2")
    r = workmail.describe_resource(OrganizationId=org_id, ResourceId=rid)
    assert (r["Name"], r["BookingOptions"]) == ("van", before), "a refused update changes nothing"
    # A member left out is false (the model's plain Boolean): here AutoAcceptRequests.
    fails("InvalidConfigurationException", workmail.update_resource, OrganizationId=org_id, ResourceId=rid,
          BookingOptions={"AutoDeclineRecurringRequests": True})
    uid = new_user(workmail, org_id, domain=domain)
    workmail.associate_delegate_to_resource(OrganizationId=org_id, ResourceId=rid, EntityId=uid)
    workmail.update_resource(OrganizationId=org_id, ResourceId=rid, BookingOptions=manual)
    assert workmail.describe_resource(OrganizationId=org_id, ResourceId=rid)["BookingOptions"] == {
        "AutoAcceptRequests": False, "AutoDeclineRecurringRequests": False, "AutoDeclineConflictingRequests": True,
    }
    # The last delegate cannot leave a resource that does not accept by itself.
    fails("InvalidConfigurationException", workmail.disassociate_delegate_from_resource, OrganizationId=org_id,
          ResourceId=rid, EntityId=uid)


def test_update_resource_errors(workmail, org):
    org_id, _ = org
    rid = workmail.create_resource(OrganizationId=org_id, Name="desk", Type="EQUIPMENT")["ResourceId"]
    workmail.create_resource(OrganizationId=org_id, Name="chair", Type="EQUIPMENT")
    fails("NameAvailabilityException", workmail.update_resource, OrganizationId=org_id, ResourceId=rid,
          Name="CHAIR")
    fails("InvalidParameterException", workmail.update_resource, OrganizationId=org_id, ResourceId=rid,
          Name="x" * 21)
    fails("InvalidParameterException", workmail.update_resource, OrganizationId=org_id, ResourceId=rid,
          Name="bad name")
    fails("InvalidParameterException", workmail.update_resource, OrganizationId=org_id, ResourceId=rid,
          Description="d" * 65)
    fails("ReservedNameException", workmail.update_resource, OrganizationId=org_id, ResourceId=rid,
          Name="system")
    fails("ValidationException", workmail.update_resource, OrganizationId=org_id, ResourceId=rid, Type="KITCHEN")
    fails("EntityNotFoundException", workmail.update_resource, OrganizationId=org_id, ResourceId="nobody")
    fails("OrganizationNotFoundException", workmail.update_resource, OrganizationId=NO_ORG, ResourceId=rid)
    workmail.delete_resource(OrganizationId=org_id, ResourceId=rid)
    fails("EntityStateException", workmail.update_resource, OrganizationId=org_id, ResourceId=rid,
          Description="gone")
    # The name of a deleted resource is free again.
    workmail.update_resource(OrganizationId=org_id, ResourceId="chair", Name="desk")


# DescribeEntity


def test_describe_entity_by_primary_address_or_alias(workmail, org):
    org_id, domain = org
    uid = new_user(workmail, org_id, name="erin", domain=domain)
    gid = workmail.create_group(OrganizationId=org_id, Name="Ops Team")["GroupId"]
    workmail.register_to_work_mail(OrganizationId=org_id, EntityId=gid, Email=f"ops@{domain}")
    rid = workmail.create_resource(OrganizationId=org_id, Name="lab", Type="ROOM")["ResourceId"]
    workmail.register_to_work_mail(OrganizationId=org_id, EntityId=rid, Email=f"lab@{domain}")
    workmail.create_alias(OrganizationId=org_id, EntityId=uid, Alias=f"e.r@{domain}")

    def describe(email):
        out = workmail.describe_entity(OrganizationId=org_id, Email=email)
        return out["EntityId"], out["Name"], out["Type"]

    assert describe(f"erin@{domain}") == (uid, "erin", "USER")
    assert describe(f"E.R@{domain.upper()}") == (uid, "erin", "USER")
    assert describe(f"ops@{domain}") == (gid, "Ops Team", "GROUP")
    assert describe(f"lab@{domain}") == (rid, "lab", "RESOURCE")
    # A disabled entity keeps its addresses; a deleted one has none.
    workmail.deregister_from_work_mail(OrganizationId=org_id, EntityId=rid)
    assert describe(f"lab@{domain}") == (rid, "lab", "RESOURCE")
    workmail.delete_resource(OrganizationId=org_id, ResourceId=rid)
    fails("EntityNotFoundException", workmail.describe_entity, OrganizationId=org_id, Email=f"lab@{domain}")

    fails("EntityNotFoundException", workmail.describe_entity, OrganizationId=org_id, Email=f"nobody@{domain}")
    fails("InvalidParameterException", workmail.describe_entity, OrganizationId=org_id, Email="erin")
    fails("InvalidParameterException", workmail.describe_entity, OrganizationId=org_id, Email="a b@x.test")
    fails("OrganizationNotFoundException", workmail.describe_entity, OrganizationId=NO_ORG,
          Email=f"erin@{domain}")
    # Another organization's address is not found in this one.
    other_org, other_domain = new_org(workmail)
    new_user(workmail, other_org, name="fay", domain=other_domain)
    fails("EntityNotFoundException", workmail.describe_entity, OrganizationId=org_id, Email=f"fay@{other_domain}")


# ListGroupsForEntity


def test_list_groups_for_entity_pages_and_filters(workmail, org):
    org_id, domain = org
    uid = new_user(workmail, org_id, name="gil", domain=domain)
    names = [f"team-{i}" for i in range(7)] + ["board"]
    gids = {}
    for n in names:
        gid = workmail.create_group(OrganizationId=org_id, Name=n)["GroupId"]
        gids[n] = gid
        workmail.register_to_work_mail(OrganizationId=org_id, EntityId=gid, Email=f"{n}@{domain}")
        workmail.associate_member_to_group(OrganizationId=org_id, GroupId=gid, MemberId=uid)
    workmail.create_group(OrganizationId=org_id, Name="team-outside")

    groups, pages = all_pages(workmail.list_groups_for_entity, "Groups", OrganizationId=org_id, EntityId=uid,
                              MaxResults=3)
    assert pages == 3
    assert sorted((g["GroupName"], g["GroupId"]) for g in groups) == sorted(gids.items())
    assert [g["GroupId"] for g in groups] == sorted(gids.values()), "a stable order across pages"
    assert all(set(g) == {"GroupId", "GroupName"} for g in groups)

    # By name or email too, with the name prefix filter (case-insensitive) and paging over it.
    filtered, pages = all_pages(workmail.list_groups_for_entity, "Groups", OrganizationId=org_id,
                                EntityId=f"GIL@{domain}", Filters={"GroupNamePrefix": "TEAM-"}, MaxResults=4)
    assert sorted(g["GroupName"] for g in filtered) == [f"team-{i}" for i in range(7)] and pages == 2
    none = workmail.list_groups_for_entity(OrganizationId=org_id, EntityId="gil",
                                           Filters={"GroupNamePrefix": "nope"})
    assert none["Groups"] == [] and "NextToken" not in none

    # A group is an entity too: its own parent groups (direct membership).
    workmail.associate_member_to_group(OrganizationId=org_id, GroupId=gids["board"], MemberId=gids["team-0"])
    parents = workmail.list_groups_for_entity(OrganizationId=org_id, EntityId=gids["team-0"])["Groups"]
    assert parents == [{"GroupId": gids["board"], "GroupName": "board"}]
    workmail.disassociate_member_from_group(OrganizationId=org_id, GroupId=gids["team-3"], MemberId=uid)
    left = workmail.list_groups_for_entity(OrganizationId=org_id, EntityId=uid)["Groups"]
    assert "team-3" not in {g["GroupName"] for g in left} and len(left) == 7


def test_list_groups_for_entity_errors(workmail, org):
    org_id, domain = org
    uid = new_user(workmail, org_id, domain=domain)
    fails("EntityNotFoundException", workmail.list_groups_for_entity, OrganizationId=org_id, EntityId="nobody")
    rid = workmail.create_resource(OrganizationId=org_id, Name="kiln", Type="EQUIPMENT")["ResourceId"]
    fails("EntityNotFoundException", workmail.list_groups_for_entity, OrganizationId=org_id, EntityId=rid)
    fails("InvalidParameterException", workmail.list_groups_for_entity, OrganizationId=org_id, EntityId=uid,
          MaxResults=101)
    fails("InvalidParameterException", workmail.list_groups_for_entity, OrganizationId=org_id, EntityId=uid,
          NextToken="not-a-token")
    fails("OrganizationNotFoundException", workmail.list_groups_for_entity, OrganizationId=NO_ORG, EntityId=uid)
    workmail.deregister_from_work_mail(OrganizationId=org_id, EntityId=uid)
    assert workmail.list_groups_for_entity(OrganizationId=org_id, EntityId=uid)["Groups"] == []
    workmail.delete_user(OrganizationId=org_id, UserId=uid)
    fails("EntityStateException", workmail.list_groups_for_entity, OrganizationId=org_id, EntityId=uid)


# UpdatePrimaryEmailAddress


def smtp_mx(mailgate, rcpt, subject):
    """Delivers a message from outside over the MX listener (STARTTLS)."""
    with smtplib.SMTP("localhost", mailgate.ports["smtp"]) as s:
        s.starttls(context=tls_context(mailgate))
        s.sendmail("x@remote.test", [rcpt], f"Subject: {subject}\r\nTo: <{rcpt}>\r\n\r\nhello\r\n".encode())


def subjects_in_inbox(mailgate, login):
    """Logs in over IMAPS as `login` and returns the Subject of every INBOX message."""
    with imaplib.IMAP4_SSL("localhost", mailgate.ports["imaps"], ssl_context=tls_context(mailgate)) as m:
        m.login(login, PASSWORD)
        typ, _ = m.select("INBOX", readonly=True)
        assert typ == "OK"
        typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK"
        found = [part[1].decode().strip().removeprefix("Subject: ") for part in data if isinstance(part, tuple)]
        m.logout()
        return found


def email_events_about(mailgate, subject):
    """The email events (any name) that carry `subject`."""
    path = mailgate.data_dir / "events" / "email.jsonl"
    records = map(json.loads, path.read_text().splitlines())
    return [r["event"] for r in records if r["event"].get("subject") == subject]


def test_update_primary_email_address_mail_follows(workmail, mailgate, org):
    org_id, domain = org
    tag = uuid.uuid4().hex[:6]
    old, new = f"hal{tag}@{domain}", f"hal.new{tag}@{domain}"
    uid = new_user(workmail, org_id, name=f"hal{tag}", domain=domain)
    gid = workmail.create_group(OrganizationId=org_id, Name=f"grp{tag}")["GroupId"]
    workmail.register_to_work_mail(OrganizationId=org_id, EntityId=gid, Email=f"grp{tag}@{domain}")
    workmail.associate_member_to_group(OrganizationId=org_id, GroupId=gid, MemberId=uid)
    before = f"before {uuid.uuid4().hex}"
    smtp_mx(mailgate, old, before)
    assert delivered_to(mailgate, old, before)

    workmail.update_primary_email_address(OrganizationId=org_id, EntityId=uid, Email=new.upper())
    u = workmail.describe_user(OrganizationId=org_id, UserId=uid)
    assert u["Email"] == new and u["State"] == "ENABLED"
    assert workmail.list_aliases(OrganizationId=org_id, EntityId=uid)["Aliases"] == [old]
    for a in (old, new):
        assert workmail.describe_entity(OrganizationId=org_id, Email=a)["EntityId"] == uid

    # Mail to the old and to the new address lands in the same mailbox.
    to_old, to_new = f"to-old {uuid.uuid4().hex}", f"to-new {uuid.uuid4().hex}"
    smtp_mx(mailgate, old, to_old)
    smtp_mx(mailgate, new, to_new)
    assert delivered_to(mailgate, old, to_old) and delivered_to(mailgate, new, to_new)
    # IMAP login with the new address sees all of it.
    assert sorted(subjects_in_inbox(mailgate, new)) == sorted([before, to_old, to_new])

    # Mail to a group reaches the member under its new primary address: the event names it.
    via_group = f"via-group {uuid.uuid4().hex}"
    smtp_mx(mailgate, f"grp{tag}@{domain}", via_group)
    assert delivered_to(mailgate, new, via_group)

    # Submission: log in with the new address, send from it; the events carry it.
    sent = f"sent {uuid.uuid4().hex}"
    new_user(workmail, org_id, name=f"peer{tag}", domain=domain)
    peer = f"peer{tag}@{domain}"
    with smtplib.SMTP_SSL("localhost", mailgate.ports["submissions"], context=tls_context(mailgate)) as s:
        s.login(new, PASSWORD)
        assert s.send_message(message(new, peer, sent)) == {}
    assert delivered_to(mailgate, peer, sent)
    about = email_events_about(mailgate, sent)
    assert about and all(e["from"] == new for e in about), about

    # Promoting the old address back swaps the two.
    workmail.update_primary_email_address(OrganizationId=org_id, EntityId=f"hal{tag}", Email=old)
    assert workmail.describe_user(OrganizationId=org_id, UserId=uid)["Email"] == old
    assert workmail.list_aliases(OrganizationId=org_id, EntityId=uid)["Aliases"] == [new]
    # Setting the current primary again is a no-op.
    workmail.update_primary_email_address(OrganizationId=org_id, EntityId=uid, Email=old)
    assert workmail.list_aliases(OrganizationId=org_id, EntityId=uid)["Aliases"] == [new]


def test_update_primary_email_address_of_groups_and_resources(workmail, mailgate, org):
    org_id, domain = org
    member = new_user(workmail, org_id, name="ivy", domain=domain)
    gid = workmail.create_group(OrganizationId=org_id, Name="helpdesk")["GroupId"]
    workmail.register_to_work_mail(OrganizationId=org_id, EntityId=gid, Email=f"helpdesk@{domain}")
    workmail.associate_member_to_group(OrganizationId=org_id, GroupId=gid, MemberId=member)
    workmail.update_primary_email_address(OrganizationId=org_id, EntityId="helpdesk", Email=f"support@{domain}")
    assert workmail.describe_group(OrganizationId=org_id, GroupId=gid)["Email"] == f"support@{domain}"
    subject = f"group-old {uuid.uuid4().hex}"
    smtp_mx(mailgate, f"helpdesk@{domain}", subject)
    assert delivered_to(mailgate, f"ivy@{domain}", subject)

    rid = workmail.create_resource(OrganizationId=org_id, Name="atrium", Type="ROOM")["ResourceId"]
    workmail.register_to_work_mail(OrganizationId=org_id, EntityId=rid, Email=f"atrium@{domain}")
    workmail.update_primary_email_address(OrganizationId=org_id, EntityId=rid, Email=f"hall-a@{domain}")
    r = workmail.describe_resource(OrganizationId=org_id, ResourceId=rid)
    assert r["Email"] == f"hall-a@{domain}"
    assert workmail.list_aliases(OrganizationId=org_id, EntityId=rid)["Aliases"] == [f"atrium@{domain}"]


def test_update_primary_email_address_errors(workmail, org):
    org_id, domain = org
    uid = new_user(workmail, org_id, name="jon", domain=domain)
    new_user(workmail, org_id, name="kat", domain=domain)
    gid = workmail.create_group(OrganizationId=org_id, Name="kat-fans")["GroupId"]
    workmail.register_to_work_mail(OrganizationId=org_id, EntityId=gid, Email=f"fans@{domain}")
    workmail.create_alias(OrganizationId=org_id, EntityId=gid, Alias=f"fanclub@{domain}")

    def update(entity, email):
        workmail.update_primary_email_address(OrganizationId=org_id, EntityId=entity, Email=email)

    fails("EmailAddressInUseException", update, uid, f"kat@{domain}")
    fails("EmailAddressInUseException", update, uid, f"fanclub@{domain}")
    fails("MailDomainNotFoundException", update, uid, "jon@elsewhere.test")
    fails("InvalidParameterException", update, uid, "jon@")
    fails("InvalidParameterException", update, uid, "no spaces@" + domain)
    fails("EntityNotFoundException", update, "nobody", f"x@{domain}")
    fails("OrganizationNotFoundException", workmail.update_primary_email_address, OrganizationId=NO_ORG,
          EntityId=uid, Email=f"x@{domain}")
    # A never-registered entity (and a deregistered one) has no primary address to change.
    fresh = workmail.create_user(OrganizationId=org_id, Name="lee", DisplayName="Lee")["UserId"]
    fails("EntityStateException", update, fresh, f"lee@{domain}")
    workmail.deregister_from_work_mail(OrganizationId=org_id, EntityId=uid)
    fails("EntityStateException", update, uid, f"jon2@{domain}")
    # Nothing was changed by the refusals.
    assert workmail.describe_entity(OrganizationId=org_id, Email=f"fanclub@{domain}")["EntityId"] == gid
    assert workmail.describe_user(OrganizationId=org_id, UserId=uid)["Email"] == f"jon@{domain}"


# Everything above survives a restart.


def test_updates_survive_a_restart(tmp_path):
    daemon = start_daemon(tmp_path)
    try:
        wm = client_for(daemon)
        org_id, domain = new_org(wm)
        uid = new_user(wm, org_id, name="mo", domain=domain)
        gid = wm.create_group(OrganizationId=org_id, Name="keepers")["GroupId"]
        wm.register_to_work_mail(OrganizationId=org_id, EntityId=gid, Email=f"keepers@{domain}")
        wm.associate_member_to_group(OrganizationId=org_id, GroupId=gid, MemberId=uid)
        wm.update_group(OrganizationId=org_id, GroupId=gid, HiddenFromGlobalAddressList=True)
        rid = wm.create_resource(OrganizationId=org_id, Name="bay", Type="ROOM")["ResourceId"]
        wm.associate_delegate_to_resource(OrganizationId=org_id, ResourceId=rid, EntityId=uid)
        booking = {"AutoAcceptRequests": False, "AutoDeclineRecurringRequests": True,
                   "AutoDeclineConflictingRequests": False}
        wm.update_resource(OrganizationId=org_id, ResourceId=rid, Name="dock", Type="EQUIPMENT",
                           Description="Loading dock", BookingOptions=booking, HiddenFromGlobalAddressList=True)
        wm.update_primary_email_address(OrganizationId=org_id, EntityId=uid, Email=f"maurice@{domain}")
    finally:
        stop_daemon(daemon)
    # The stopped daemon's ports file would be read before the new one replaces it.
    (daemon.data_dir / "run" / "ports.json").unlink()
    daemon = start_daemon(tmp_path)
    try:
        wm = client_for(daemon)
        assert wm.describe_group(OrganizationId=org_id, GroupId=gid)["HiddenFromGlobalAddressList"] is True
        r = wm.describe_resource(OrganizationId=org_id, ResourceId=rid)
        assert (r["Name"], r["Type"], r["Description"], r["HiddenFromGlobalAddressList"]) == (
            "dock", "EQUIPMENT", "Loading dock", True)
        assert r["BookingOptions"] == booking
        assert wm.describe_user(OrganizationId=org_id, UserId=uid)["Email"] == f"maurice@{domain}"
        assert wm.describe_entity(OrganizationId=org_id, Email=f"mo@{domain}")["EntityId"] == uid
        assert wm.list_groups_for_entity(OrganizationId=org_id, EntityId=f"maurice@{domain}")["Groups"] == [
            {"GroupId": gid, "GroupName": "keepers"}]
        # Login with the new address works against the reopened store.
        with imaplib.IMAP4_SSL("localhost", daemon.ports["imaps"], ssl_context=tls_context(daemon)) as m:
            m.login(f"maurice@{domain}", PASSWORD)
            m.logout()
    finally:
        stop_daemon(daemon)


# What the global address list shows (EWS ResolveNames) follows the updates.


def test_gal_follows_hidden_flags_and_the_new_primary_address(ews_daemon):
    wm = client_for(ews_daemon)
    org_id, domain = new_org(wm)
    tag = uuid.uuid4().hex[:6]
    new_user(wm, org_id, name=f"nia{tag}", domain=domain)
    gid = wm.create_group(OrganizationId=org_id, Name=f"choir{tag}")["GroupId"]
    wm.register_to_work_mail(OrganizationId=org_id, EntityId=gid, Email=f"choir{tag}@{domain}")
    rid = wm.create_resource(OrganizationId=org_id, Name=f"nave{tag}", Type="ROOM")["ResourceId"]
    wm.register_to_work_mail(OrganizationId=org_id, EntityId=rid, Email=f"nave{tag}@{domain}")
    protocol = basic_account(ews_daemon, f"nia{tag}@{domain}").protocol

    def gal(name):
        return [m.email_address for m in protocol.resolve_names([name]) if hasattr(m, "email_address")]

    assert gal(f"choir{tag}") == [f"choir{tag}@{domain}"]
    assert gal(f"nave{tag}") == [f"nave{tag}@{domain}"]
    wm.update_group(OrganizationId=org_id, GroupId=gid, HiddenFromGlobalAddressList=True)
    wm.update_resource(OrganizationId=org_id, ResourceId=rid, HiddenFromGlobalAddressList=True)
    assert gal(f"choir{tag}") == [] and gal(f"nave{tag}") == []
    wm.update_group(OrganizationId=org_id, GroupId=gid, HiddenFromGlobalAddressList=False)
    assert gal(f"choir{tag}") == [f"choir{tag}@{domain}"]
    wm.update_primary_email_address(OrganizationId=org_id, EntityId=gid, Email=f"chorus{tag}@{domain}")
    # Found by its old address (now an alias), listed under the new one.
    assert gal(f"choir{tag}@{domain}") == [f"chorus{tag}@{domain}"]
