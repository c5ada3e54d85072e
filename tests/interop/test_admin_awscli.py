"""The AWS CLI (`aws workmail ... --endpoint-url`) against mailgate: users,
groups, access control rules and impersonation roles, CA verified."""

import json
import os
import pathlib
import subprocess
import sys
import uuid

import pytest

AWS = pathlib.Path(sys.executable).parent / "aws"


@pytest.fixture
def aws(mailgate):
    """Runs `aws workmail <args>` with the generated credentials; returns parsed JSON."""
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=mailgate.credentials, AWS_CONFIG_FILE=os.devnull)
    env.pop("AWS_PROFILE", None)

    def run(*args, ok=True):
        cmd = [str(AWS), "workmail", *args, "--endpoint-url", mailgate.endpoint, "--ca-bundle", mailgate.ca,
               "--region", "local", "--profile", "mailgate", "--output", "json"]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        if ok:
            assert p.returncode == 0, p.stderr
            return json.loads(p.stdout) if p.stdout.strip() else {}
        assert p.returncode != 0
        return p.stderr

    return run


def test_users_with_the_cli(aws, org):
    org_id, domain = org
    uid = aws("create-user", "--organization-id", org_id, "--name", "cliuser", "--display-name", "CLI User",
              "--password", "Corr3ct-Horse-Battery")["UserId"]
    aws("register-to-work-mail", "--organization-id", org_id, "--entity-id", uid, "--email", f"cliuser@{domain}")
    assert aws("describe-user", "--organization-id", org_id, "--user-id", uid)["State"] == "ENABLED"
    users = aws("list-users", "--organization-id", org_id)["Users"]
    assert [u["Name"] for u in users] == ["cliuser"]
    assert "EntityStateException" in aws("delete-user", "--organization-id", org_id, "--user-id", uid, ok=False)
    aws("deregister-from-work-mail", "--organization-id", org_id, "--entity-id", uid)
    aws("delete-user", "--organization-id", org_id, "--user-id", uid)
    assert aws("list-users", "--organization-id", org_id)["Users"] == []


def test_groups_with_the_cli(aws, org):
    org_id, _ = org
    gid = aws("create-group", "--organization-id", org_id, "--name", "cligroup")["GroupId"]
    assert aws("describe-group", "--organization-id", org_id, "--group-id", gid)["Name"] == "cligroup"
    assert [g["Id"] for g in aws("list-groups", "--organization-id", org_id)["Groups"]] == [gid]
    aws("delete-group", "--organization-id", org_id, "--group-id", gid)
    assert aws("list-groups", "--organization-id", org_id)["Groups"] == []


def test_access_control_rules_with_the_cli(aws, org):
    org_id, _ = org
    aws("put-access-control-rule", "--organization-id", org_id, "--name", "deny-smtp", "--effect", "DENY",
        "--description", "no SMTP from 127/8", "--ip-ranges", "127.0.0.0/8", "--actions", "SMTP")
    rules = {r["Name"]: r for r in aws("list-access-control-rules", "--organization-id", org_id)["Rules"]}
    assert rules["deny-smtp"]["IpRanges"] == ["127.0.0.0/8"]
    aws("delete-access-control-rule", "--organization-id", org_id, "--name", "deny-smtp")
    names = [r["Name"] for r in aws("list-access-control-rules", "--organization-id", org_id)["Rules"]]
    assert names == ["default"]


def test_impersonation_roles_with_the_cli(aws, org):
    org_id, _ = org
    rules = json.dumps([{"ImpersonationRuleId": "all", "Name": "all", "Effect": "ALLOW"}])
    rid = aws("create-impersonation-role", "--organization-id", org_id, "--name", "cli-role", "--type", "READ_ONLY",
              "--rules", rules, "--client-token", uuid.uuid4().hex)["ImpersonationRoleId"]
    assert aws("get-impersonation-role", "--organization-id", org_id, "--impersonation-role-id", rid)["Name"] == "cli-role"
    roles = aws("list-impersonation-roles", "--organization-id", org_id)["Roles"]
    assert [r["ImpersonationRoleId"] for r in roles] == [rid]
    token = aws("assume-impersonation-role", "--organization-id", org_id, "--impersonation-role-id", rid)
    assert token["ExpiresIn"] == 900 and token["Token"]
    aws("delete-impersonation-role", "--organization-id", org_id, "--impersonation-role-id", rid)
    err = aws("get-impersonation-role", "--organization-id", org_id, "--impersonation-role-id", rid, ok=False)
    assert "ResourceNotFoundException" in err
