"""boto3 against mailgate's WorkMail admin API over TLS (CA verified): every
action of issue 9, pagination, filters and the error codes boto3 reports."""

import datetime
import json
import uuid

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
import requests
from botocore.exceptions import ClientError

PASSWORD = "Corr3ct-Horse-Battery"


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def new_user(wm, org, name=None, register=True, domain=None):
    name = name or f"u{uuid.uuid4().hex[:8]}"
    uid = wm.create_user(OrganizationId=org, Name=name, DisplayName=name.title(), Password=PASSWORD)[
        "UserId"
    ]
    if register:
        wm.register_to_work_mail(OrganizationId=org, EntityId=uid, Email=f"{name}@{domain}")
    return uid


def all_pages(call, key, **kwargs):
    """Walks NextToken; returns (items, number of pages)."""
    items, pages, token = [], 0, None
    while True:
        if token:
            kwargs["NextToken"] = token
        out = call(**kwargs)
        pages += 1
        items += out[key]
        token = out.get("NextToken")
        if not token:
            return items, pages


# Organizations and tags


def test_organizations_describe_list_and_tags(workmail, mailgate, org):
    org_id, domain = org
    d = workmail.describe_organization(OrganizationId=org_id)
    assert d["State"] == "Active" and d["DefaultMailDomain"] == domain
    assert d["ARN"] == f"arn:aws:workmail:local:000000000000:organization/{org_id}"
    assert isinstance(d["CompletedDate"], datetime.datetime)
    ids = [o["OrganizationId"] for o in all_pages(workmail.list_organizations, "OrganizationSummaries")[0]]
    assert org_id in ids
    first = workmail.list_organizations(MaxResults=1)
    assert len(first["OrganizationSummaries"]) == 1 and "NextToken" in first
    # A new organization starts with the default allow-all rule.
    rules = workmail.list_access_control_rules(OrganizationId=org_id)["Rules"]
    assert [r["Effect"] for r in rules] == ["ALLOW"]

    arn = d["ARN"]
    workmail.tag_resource(ResourceARN=arn, Tags=[{"Key": "team", "Value": "ops"}, {"Key": "env", "Value": "dev"}])
    tags = workmail.list_tags_for_resource(ResourceARN=arn)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "dev"), ("team", "ops")]
    workmail.untag_resource(ResourceARN=arn, TagKeys=["env"])
    assert workmail.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "ops"}]
    with pytest.raises(ClientError) as e:
        workmail.tag_resource(ResourceARN=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert code(e) == "TooManyTagsException"
    with pytest.raises(ClientError) as e:
        workmail.list_tags_for_resource(ResourceARN=arn.replace(org_id, "m-" + "0" * 32))
    assert code(e) == "ResourceNotFoundException"


def test_organization_errors(workmail, org):
    org_id, _ = org
    alias = workmail.describe_organization(OrganizationId=org_id)["Alias"]
    with pytest.raises(ClientError) as e:
        workmail.create_organization(Alias=alias)
    assert code(e) == "NameAvailabilityException"
    with pytest.raises(ClientError) as e:
        workmail.describe_organization(OrganizationId="m-" + "0" * 32)
    assert code(e) == "OrganizationNotFoundException"


# Users


def test_user_lifecycle(workmail, org):
    org_id, domain = org
    uid = workmail.create_user(
        OrganizationId=org_id, Name="alice", DisplayName="Alice A", Password=PASSWORD, FirstName="Alice"
    )["UserId"]
    u = workmail.describe_user(OrganizationId=org_id, UserId=uid)
    assert (u["Name"], u["State"], u["UserRole"], u["FirstName"]) == ("alice", "DISABLED", "USER", "Alice")
    workmail.register_to_work_mail(OrganizationId=org_id, EntityId=uid, Email=f"alice@{domain}")
    u = workmail.describe_user(OrganizationId=org_id, UserId=uid)
    assert u["State"] == "ENABLED" and u["Email"] == f"alice@{domain}"
    assert isinstance(u["EnabledDate"], datetime.datetime)

    workmail.update_user(OrganizationId=org_id, UserId=uid, DisplayName="Alice B", JobTitle="Admin", City="Oslo")
    u = workmail.describe_user(OrganizationId=org_id, UserId=uid)
    assert (u["DisplayName"], u["JobTitle"], u["City"]) == ("Alice B", "Admin", "Oslo")
    workmail.reset_password(OrganizationId=org_id, UserId=uid, Password="An0ther-Good-Passphrase")

    details = workmail.get_mailbox_details(OrganizationId=org_id, UserId=uid)
    assert details["MailboxQuota"] == 51200 and details["MailboxSize"] == 0.0
    workmail.update_mailbox_quota(OrganizationId=org_id, UserId=uid, MailboxQuota=2048)
    assert workmail.get_mailbox_details(OrganizationId=org_id, UserId=uid)["MailboxQuota"] == 2048

    with pytest.raises(ClientError) as e:
        workmail.delete_user(OrganizationId=org_id, UserId=uid)
    assert code(e) == "EntityStateException"
    workmail.deregister_from_work_mail(OrganizationId=org_id, EntityId=uid)
    assert workmail.describe_user(OrganizationId=org_id, UserId=uid)["State"] == "DISABLED"
    workmail.delete_user(OrganizationId=org_id, UserId=uid)
    assert workmail.describe_user(OrganizationId=org_id, UserId=uid)["State"] == "DELETED"
    assert uid not in [x["Id"] for x in workmail.list_users(OrganizationId=org_id)["Users"]]


def test_list_users_pages_and_filters(workmail, org):
    org_id, domain = org
    for i in range(7):
        workmail.create_user(OrganizationId=org_id, Name=f"page{i}", DisplayName=f"Pager {i}")
    new_user(workmail, org_id, name="zed", domain=domain)
    users, pages = all_pages(workmail.list_users, "Users", OrganizationId=org_id, MaxResults=3)
    assert sorted(u["Name"] for u in users) == [f"page{i}" for i in range(7)] + ["zed"]
    assert pages == 3
    by_name = workmail.list_users(OrganizationId=org_id, Filters={"UsernamePrefix": "page"})["Users"]
    assert len(by_name) == 7
    by_display = workmail.list_users(OrganizationId=org_id, Filters={"DisplayNamePrefix": "Pager 3"})["Users"]
    assert [u["Name"] for u in by_display] == ["page3"]
    enabled = workmail.list_users(OrganizationId=org_id, Filters={"State": "ENABLED"})["Users"]
    assert [u["Name"] for u in enabled] == ["zed"]
    by_email = workmail.list_users(OrganizationId=org_id, Filters={"PrimaryEmailPrefix": "zed@"})["Users"]
    assert [u["Name"] for u in by_email] == ["zed"]
    # The paginator boto3 ships works too.
    names = [u["Name"] for p in workmail.get_paginator("list_users").paginate(OrganizationId=org_id, PaginationConfig={"PageSize": 2}) for u in p["Users"]]
    assert len(names) == 8


def test_user_errors(workmail, org):
    org_id, domain = org
    uid = new_user(workmail, org_id, name="carol", domain=domain)
    with pytest.raises(ClientError) as e:
        workmail.describe_user(OrganizationId=org_id, UserId="nobody")
    assert code(e) == "EntityNotFoundException"
    with pytest.raises(ClientError) as e:
        workmail.create_user(OrganizationId=org_id, Name="carol", DisplayName="Carol 2")
    assert code(e) == "NameAvailabilityException"
    other = workmail.create_user(OrganizationId=org_id, Name="carol2", DisplayName="Carol 2")["UserId"]
    with pytest.raises(ClientError) as e:
        workmail.register_to_work_mail(OrganizationId=org_id, EntityId=other, Email=f"carol@{domain}")
    assert code(e) == "EmailAddressInUseException"
    with pytest.raises(ClientError) as e:
        workmail.register_to_work_mail(OrganizationId=org_id, EntityId=other, Email="carol2@nowhere.test")
    assert code(e) == "MailDomainNotFoundException"
    with pytest.raises(ClientError) as e:
        workmail.create_user(OrganizationId=org_id, Name="dave", DisplayName="Dave", Password="short")
    assert code(e) == "InvalidPasswordException"
    with pytest.raises(ClientError) as e:
        workmail.reset_password(OrganizationId=org_id, UserId=uid, Password="password")
    assert code(e) == "InvalidPasswordException"
    with pytest.raises(ClientError) as e:
        workmail.delete_user(OrganizationId=org_id, UserId=uid)
    assert code(e) == "EntityStateException"


# Groups and aliases


def test_groups_members_and_aliases(workmail, org):
    org_id, domain = org
    gid = workmail.create_group(OrganizationId=org_id, Name="team")["GroupId"]
    workmail.register_to_work_mail(OrganizationId=org_id, EntityId=gid, Email=f"team@{domain}")
    g = workmail.describe_group(OrganizationId=org_id, GroupId=gid)
    assert (g["Name"], g["State"], g["Email"]) == ("team", "ENABLED", f"team@{domain}")
    workmail.create_group(OrganizationId=org_id, Name="other")
    assert [x["Name"] for x in workmail.list_groups(OrganizationId=org_id, Filters={"NamePrefix": "te"})["Groups"]] == ["team"]
    groups, _ = all_pages(workmail.list_groups, "Groups", OrganizationId=org_id, MaxResults=1)
    assert sorted(x["Name"] for x in groups) == ["other", "team"]

    members = [new_user(workmail, org_id, domain=domain) for _ in range(3)]
    for m in members:
        workmail.associate_member_to_group(OrganizationId=org_id, GroupId=gid, MemberId=m)
    listed, pages = all_pages(workmail.list_group_members, "Members", OrganizationId=org_id, GroupId=gid, MaxResults=2)
    assert sorted(m["Id"] for m in listed) == sorted(members) and pages == 2
    assert {m["Type"] for m in listed} == {"USER"}
    workmail.disassociate_member_from_group(OrganizationId=org_id, GroupId=gid, MemberId=members[0])
    assert len(workmail.list_group_members(OrganizationId=org_id, GroupId=gid)["Members"]) == 2

    workmail.create_alias(OrganizationId=org_id, EntityId=gid, Alias=f"crew@{domain}")
    workmail.create_alias(OrganizationId=org_id, EntityId=gid, Alias=f"staff@{domain}")
    aliases, pages = all_pages(workmail.list_aliases, "Aliases", OrganizationId=org_id, EntityId=gid, MaxResults=1)
    assert aliases == [f"crew@{domain}", f"staff@{domain}"] and pages == 2
    workmail.delete_alias(OrganizationId=org_id, EntityId=gid, Alias=f"crew@{domain}")
    assert workmail.list_aliases(OrganizationId=org_id, EntityId=gid)["Aliases"] == [f"staff@{domain}"]
    with pytest.raises(ClientError) as e:
        workmail.create_alias(OrganizationId=org_id, EntityId=members[1], Alias=f"staff@{domain}")
    assert code(e) == "EmailAddressInUseException"

    with pytest.raises(ClientError) as e:
        workmail.delete_group(OrganizationId=org_id, GroupId=gid)
    assert code(e) == "EntityStateException"
    workmail.deregister_from_work_mail(OrganizationId=org_id, EntityId=gid)
    workmail.delete_group(OrganizationId=org_id, GroupId=gid)
    with pytest.raises(ClientError) as e:
        workmail.describe_group(OrganizationId=org_id, GroupId="team")
    assert code(e) == "EntityNotFoundException"


# Resources and mailbox permissions


def test_resources_delegates_and_permissions(workmail, org):
    org_id, domain = org
    rid = workmail.create_resource(OrganizationId=org_id, Name="room1", Type="ROOM", Description="Big room")["ResourceId"]
    workmail.register_to_work_mail(OrganizationId=org_id, EntityId=rid, Email=f"room1@{domain}")
    r = workmail.describe_resource(OrganizationId=org_id, ResourceId=rid)
    assert (r["Type"], r["State"], r["Description"]) == ("ROOM", "ENABLED", "Big room")
    assert r["BookingOptions"]["AutoAcceptRequests"] is True
    workmail.create_resource(OrganizationId=org_id, Name="beamer", Type="EQUIPMENT")
    listed, pages = all_pages(workmail.list_resources, "Resources", OrganizationId=org_id, MaxResults=1)
    assert sorted(x["Name"] for x in listed) == ["beamer", "room1"] and pages == 2
    assert [x["Name"] for x in workmail.list_resources(OrganizationId=org_id, Filters={"State": "ENABLED"})["Resources"]] == ["room1"]

    uid = new_user(workmail, org_id, domain=domain)
    workmail.associate_delegate_to_resource(OrganizationId=org_id, ResourceId=rid, EntityId=uid)
    assert workmail.list_resource_delegates(OrganizationId=org_id, ResourceId=rid)["Delegates"] == [{"Id": uid, "Type": "USER"}]
    workmail.disassociate_delegate_from_resource(OrganizationId=org_id, ResourceId=rid, EntityId=uid)
    assert workmail.list_resource_delegates(OrganizationId=org_id, ResourceId=rid)["Delegates"] == []

    owner = new_user(workmail, org_id, domain=domain)
    workmail.put_mailbox_permissions(OrganizationId=org_id, EntityId=owner, GranteeId=uid, PermissionValues=["FULL_ACCESS", "SEND_AS"])
    perms = workmail.list_mailbox_permissions(OrganizationId=org_id, EntityId=owner)["Permissions"]
    assert perms == [{"GranteeId": uid, "GranteeType": "USER", "PermissionValues": ["FULL_ACCESS", "SEND_AS"]}]
    workmail.delete_mailbox_permissions(OrganizationId=org_id, EntityId=owner, GranteeId=uid)
    assert workmail.list_mailbox_permissions(OrganizationId=org_id, EntityId=owner)["Permissions"] == []
    with pytest.raises(ClientError) as e:
        workmail.put_mailbox_permissions(OrganizationId=org_id, EntityId=owner, GranteeId="nobody", PermissionValues=["SEND_AS"])
    assert code(e) == "EntityNotFoundException"

    with pytest.raises(ClientError) as e:
        workmail.delete_resource(OrganizationId=org_id, ResourceId=rid)
    assert code(e) == "EntityStateException"
    workmail.deregister_from_work_mail(OrganizationId=org_id, EntityId=rid)
    workmail.delete_resource(OrganizationId=org_id, ResourceId=rid)
    with pytest.raises(ClientError) as e:
        workmail.describe_resource(OrganizationId=org_id, ResourceId="room1")
    assert code(e) == "EntityNotFoundException"


# Mail domains


def test_mail_domains(workmail, org):
    org_id, domain = org
    extra = f"x{uuid.uuid4().hex[:8]}.test"
    workmail.register_mail_domain(OrganizationId=org_id, DomainName=extra)
    domains = {d["DomainName"]: d["DefaultDomain"] for d in workmail.list_mail_domains(OrganizationId=org_id)["MailDomains"]}
    assert domains == {domain: True, extra: False}
    page = workmail.list_mail_domains(OrganizationId=org_id, MaxResults=1)
    assert len(page["MailDomains"]) == 1 and page["NextToken"]
    got = workmail.get_mail_domain(OrganizationId=org_id, DomainName=extra)
    assert (got["IsDefault"], got["IsTestDomain"], got["OwnershipVerificationStatus"], got["DkimVerificationStatus"], got["Records"]) == (
        False, False, "VERIFIED", "VERIFIED", [])
    workmail.update_default_mail_domain(OrganizationId=org_id, DomainName=extra)
    assert workmail.get_mail_domain(OrganizationId=org_id, DomainName=extra)["IsDefault"] is True
    assert workmail.describe_organization(OrganizationId=org_id)["DefaultMailDomain"] == extra
    with pytest.raises(ClientError) as e:
        workmail.deregister_mail_domain(OrganizationId=org_id, DomainName=extra)
    assert code(e) == "MailDomainInUseException"
    workmail.update_default_mail_domain(OrganizationId=org_id, DomainName=domain)
    workmail.deregister_mail_domain(OrganizationId=org_id, DomainName=extra)
    with pytest.raises(ClientError) as e:
        workmail.get_mail_domain(OrganizationId=org_id, DomainName=extra)
    assert code(e) == "MailDomainNotFoundException"


# Access control rules


def test_access_control_rules(workmail, org):
    org_id, domain = org
    uid = new_user(workmail, org_id, domain=domain)
    workmail.put_access_control_rule(
        OrganizationId=org_id, Name="no-imap", Effect="DENY", Description="block IMAP from 10/8",
        IpRanges=["10.0.0.0/8"], Actions=["IMAP"], UserIds=[uid])
    rules = {r["Name"]: r for r in workmail.list_access_control_rules(OrganizationId=org_id)["Rules"]}
    assert rules["no-imap"]["Actions"] == ["IMAP"] and isinstance(rules["no-imap"]["DateCreated"], datetime.datetime)
    eff = workmail.get_access_control_effect(OrganizationId=org_id, IpAddress="10.1.2.3", Action="IMAP", UserId=uid)
    assert eff["Effect"] == "DENY" and "no-imap" in eff["MatchedRules"]
    eff = workmail.get_access_control_effect(OrganizationId=org_id, IpAddress="192.0.2.1", Action="IMAP", UserId=uid)
    assert eff["Effect"] == "ALLOW"
    with pytest.raises(ClientError) as e:
        workmail.get_access_control_effect(OrganizationId=org_id, IpAddress="10.1.2.3", Action="IMAP", UserId="0" * 36)
    assert code(e) == "EntityNotFoundException"
    workmail.delete_access_control_rule(OrganizationId=org_id, Name="no-imap")
    assert [r["Name"] for r in workmail.list_access_control_rules(OrganizationId=org_id)["Rules"]] == ["default"]
    # default + 9 more = 10 rules; the 11th is over the limit.
    for i in range(9):
        workmail.put_access_control_rule(OrganizationId=org_id, Name=f"r{i}", Effect="ALLOW", Description="")
    with pytest.raises(ClientError) as e:
        workmail.put_access_control_rule(OrganizationId=org_id, Name="r-eleventh", Effect="ALLOW", Description="")
    assert code(e) == "LimitExceededException"


# Impersonation roles


def test_impersonation_roles(workmail, org):
    org_id, domain = org
    target = new_user(workmail, org_id, domain=domain)
    other = new_user(workmail, org_id, domain=domain)
    rule = {"ImpersonationRuleId": "r1", "Name": "target only", "Effect": "ALLOW", "TargetUsers": [target]}
    rid = workmail.create_impersonation_role(OrganizationId=org_id, Name="reader", Type="READ_ONLY", Description="reads", Rules=[rule])["ImpersonationRoleId"]
    got = workmail.get_impersonation_role(OrganizationId=org_id, ImpersonationRoleId=rid)
    assert (got["Name"], got["Type"], got["Rules"][0]["TargetUsers"]) == ("reader", "READ_ONLY", [target])
    eff = workmail.get_impersonation_role_effect(OrganizationId=org_id, ImpersonationRoleId=rid, TargetUser=target)
    assert eff["Effect"] == "ALLOW" and eff["Type"] == "READ_ONLY"
    assert eff["MatchedRules"] == [{"ImpersonationRuleId": "r1", "Name": "target only"}]
    assert workmail.get_impersonation_role_effect(OrganizationId=org_id, ImpersonationRoleId=rid, TargetUser=other)["Effect"] == "DENY"
    tok = workmail.assume_impersonation_role(OrganizationId=org_id, ImpersonationRoleId=rid)
    assert tok["ExpiresIn"] == 900 and tok["Token"]

    workmail.update_impersonation_role(OrganizationId=org_id, ImpersonationRoleId=rid, Name="writer", Type="FULL_ACCESS", Rules=[rule])
    assert workmail.get_impersonation_role(OrganizationId=org_id, ImpersonationRoleId=rid)["Type"] == "FULL_ACCESS"
    for i in range(2):
        workmail.create_impersonation_role(OrganizationId=org_id, Name=f"extra{i}", Type="READ_ONLY", Rules=[])
    roles, pages = all_pages(workmail.list_impersonation_roles, "Roles", OrganizationId=org_id, MaxResults=2)
    assert len(roles) == 3 and pages == 2

    # A rule may name a role; GetAccessControlEffect then judges the role (EWS only).
    workmail.put_access_control_rule(OrganizationId=org_id, Name="deny-role", Effect="DENY", Description="", ImpersonationRoleIds=[rid])
    eff = workmail.get_access_control_effect(OrganizationId=org_id, IpAddress="127.0.0.1", Action="EWS", ImpersonationRoleId=rid)
    assert eff["Effect"] == "DENY"

    workmail.delete_impersonation_role(OrganizationId=org_id, ImpersonationRoleId=rid)
    for call in (workmail.get_impersonation_role, workmail.assume_impersonation_role):
        with pytest.raises(ClientError) as e:
            call(OrganizationId=org_id, ImpersonationRoleId=rid)
        assert code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        workmail.get_impersonation_role_effect(OrganizationId=org_id, ImpersonationRoleId=str(uuid.uuid4()), TargetUser=target)
    assert code(e) == "ResourceNotFoundException"


# Protocol-level errors


def _raw(mailgate, target, body, key, secret, skew=datetime.timedelta(0)):
    """A hand-built request signed with botocore's SigV4 signer, sent with requests."""
    url = mailgate.endpoint + "/"
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=url, data=body,
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), "workmail", "local")
    real = datetime.datetime

    class Clock(real):
        @classmethod
        def utcnow(cls):
            return real.utcnow() + skew

    botocore.auth.datetime.datetime = Clock
    try:
        signer.add_auth(req)
    finally:
        botocore.auth.datetime.datetime = real
    prepared = req.prepare()
    return requests.post(url, data=body, headers=dict(prepared.headers), verify=mailgate.ca, timeout=10)


def test_unknown_operation_bad_signature_and_stale_date(mailgate, workmail):
    key, secret = mailgate.key()
    ok = _raw(mailgate, "WorkMailService.ListOrganizations", b"{}", key, secret)
    assert ok.status_code == 200 and "OrganizationSummaries" in ok.json()
    r = _raw(mailgate, "WorkMailService.DeleteEverything", b"{}", key, secret)
    assert (r.status_code, r.json()["__type"]) == (400, "UnknownOperationException")
    r = _raw(mailgate, "WorkMailService.ListOrganizations", b"{not json", key, secret)
    assert (r.status_code, r.json()["__type"]) == (400, "SerializationException")
    r = _raw(mailgate, "WorkMailService.DescribeUser", b'{"OrganizationId": "m-1"}', key, secret)
    assert (r.status_code, r.json()["__type"]) == (400, "ValidationException")
    assert "UserId" in r.json()["message"]
    r = _raw(mailgate, "WorkMailService.ListOrganizations", b"{}", key, secret, skew=datetime.timedelta(minutes=-20))
    assert (r.status_code, r.json()["__type"]) == (400, "InvalidSignatureException")

    wrong = boto3.Session(aws_access_key_id=key, aws_secret_access_key="x" * 40, region_name="local").client(
        "workmail", endpoint_url=mailgate.endpoint, verify=mailgate.ca)
    with pytest.raises(ClientError) as e:
        wrong.list_organizations()
    assert code(e) == "InvalidSignatureException"
    stranger = boto3.Session(aws_access_key_id="AKIANOBODYNOBODY0000", aws_secret_access_key="x" * 40, region_name="local").client(
        "workmail", endpoint_url=mailgate.endpoint, verify=mailgate.ca)
    with pytest.raises(ClientError) as e:
        stranger.list_organizations()
    assert code(e) == "UnrecognizedClientException"


def test_a_signature_cannot_be_replayed_as_another_action(mailgate, workmail, org):
    """Issue 20.1: botocore's signer, then the action changed after signing."""
    org_id, _ = org
    group = workmail.create_group(OrganizationId=org_id, Name=f"g{uuid.uuid4().hex[:8]}")["GroupId"]
    key, secret = mailgate.key()
    url = mailgate.endpoint + "/"
    body = json.dumps({"OrganizationId": org_id, "GroupId": group}).encode()

    def signed(signer_class):
        req = botocore.awsrequest.AWSRequest(
            method="POST", url=url, data=body,
            headers={"X-Amz-Target": "WorkMailService.DescribeGroup",
                     "Content-Type": "application/x-amz-json-1.1"})
        signer_class(botocore.credentials.Credentials(key, secret), "workmail", "local").add_auth(req)
        headers = dict(req.prepare().headers)
        headers["X-Amz-Target"] = "WorkMailService.DeleteGroup"
        return requests.post(url, data=body, headers=headers, verify=mailgate.ca, timeout=10)

    class LeavesOutTheTarget(botocore.auth.SigV4Auth):
        def headers_to_sign(self, request):
            h = super().headers_to_sign(request)
            del h["x-amz-target"]
            return h

    r = signed(LeavesOutTheTarget)
    assert (r.status_code, r.json()["__type"]) == (400, "IncompleteSignatureException")
    assert "x-amz-target" in r.json()["message"]
    r = signed(botocore.auth.SigV4Auth)
    assert (r.status_code, r.json()["__type"]) == (400, "InvalidSignatureException")
    assert workmail.describe_group(OrganizationId=org_id, GroupId=group)["State"] != "DELETED"


def test_stale_date_through_boto3(workmail, monkeypatch):
    real = datetime.datetime

    class Stale(real):
        @classmethod
        def utcnow(cls):
            return real.utcnow() - datetime.timedelta(minutes=20)

    monkeypatch.setattr(botocore.auth.datetime, "datetime", Stale)
    with pytest.raises(ClientError) as e:
        workmail.list_organizations()
    assert code(e) == "InvalidSignatureException"
    assert "expired" in e.value.response["Error"]["Message"].lower()


def test_admin_cli_calls_the_api(mailgate, org):
    import subprocess, os
    org_id, _ = org
    binary = os.environ["MAILGATE_BIN"]
    out = subprocess.run(
        [binary, "admin", "CreateGroup", "--data-dir", str(mailgate.data_dir), "--organization-id", org_id, "--name", "cli-group"],
        capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["GroupId"]
    bad = subprocess.run(
        [binary, "admin", "DescribeGroup", "--data-dir", str(mailgate.data_dir), "--organization-id", org_id, "--group-id", "nobody"],
        capture_output=True, text=True)
    assert bad.returncode == 1 and json.loads(bad.stderr)["__type"] == "EntityNotFoundException"


def test_email_monitoring_configuration(workmail, org):
    org_id, _ = org
    role = "arn:aws:iam::000000000000:role/workmail-events"
    group = "arn:aws:logs:local:000000000000:log-group:email_log:*"
    with pytest.raises(ClientError) as e:
        workmail.describe_email_monitoring_configuration(OrganizationId=org_id)
    assert code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        workmail.put_email_monitoring_configuration(
            OrganizationId=org_id, RoleArn=role, LogGroupArn="arn:aws:logs:local:000000000000:log-group:no-such-sink:*"
        )
    assert code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        workmail.put_email_monitoring_configuration(
            OrganizationId=org_id, RoleArn=role, LogGroupArn="arn:aws:logs:eu-west-1:000000000000:log-group:email_log:*"
        )
    assert code(e) == "InvalidParameterException", "another region is not ours"
    with pytest.raises(ClientError) as e:
        workmail.put_email_monitoring_configuration(
            OrganizationId="m-" + "0" * 32, RoleArn=role, LogGroupArn=group
        )
    assert code(e) == "OrganizationNotFoundException"
    workmail.put_email_monitoring_configuration(OrganizationId=org_id, RoleArn=role, LogGroupArn=group)
    out = workmail.describe_email_monitoring_configuration(OrganizationId=org_id)
    assert (out["RoleArn"], out["LogGroupArn"]) == (role, group)
    # The configuration is not a tag of the organization.
    arn = workmail.describe_organization(OrganizationId=org_id)["ARN"]
    assert workmail.list_tags_for_resource(ResourceARN=arn)["Tags"] == []
    workmail.delete_email_monitoring_configuration(OrganizationId=org_id)
    workmail.delete_email_monitoring_configuration(OrganizationId=org_id)
    with pytest.raises(ClientError) as e:
        workmail.describe_email_monitoring_configuration(OrganizationId=org_id)
    assert code(e) == "ResourceNotFoundException"
