"""Secret rotation on one daemon (the embedded store) through the admin CLI:
`mailgate admin rotate-token-keys` keeps the current key for verifying (a
token minted before one rotation still works, before two it does not) and
`mailgate admin rotate-admin-key` replaces the generated admin key (the old one
is refused by boto3's calls, the new one is in the credentials file the CLI
reads); both survive a restart. A malformed call changes nothing."""

import json
import os
import subprocess

from conftest import admin_key_works, client_for, impersonating_works, new_org, start_daemon, stop_daemon

PASSWORD = "Corr3ct-Horse-Battery"
def cli(daemon, *args):
    """`mailgate admin ARGS --data-dir DIR`: (exit code, stdout, stderr)."""
    p = subprocess.run(
        [os.environ["MAILGATE_BIN"], "admin", *args, "--data-dir", str(daemon.data_dir)],
        capture_output=True, text=True, timeout=60,
    )
    return p.returncode, p.stdout, p.stderr


def test_rotations_through_the_cli_on_one_daemon(tmp_path_factory):
    root = tmp_path_factory.mktemp("rotation")
    daemon = start_daemon(root, "[ews]\nenabled = true\n")
    try:
        wm = client_for(daemon)
        org_id, domain = new_org(wm)
        uid = wm.create_user(OrganizationId=org_id, Name="bob", DisplayName="bob", Password=PASSWORD)["UserId"]
        wm.register_to_work_mail(OrganizationId=org_id, EntityId=uid, Email=f"bob@{domain}")
        bob = f"bob@{domain}"
        role_id = wm.create_impersonation_role(
            OrganizationId=org_id, Name="all", Type="FULL_ACCESS",
            Rules=[{"ImpersonationRuleId": "all", "Name": "all", "Effect": "ALLOW"}],
        )["ImpersonationRoleId"]

        def mint():
            return wm.assume_impersonation_role(OrganizationId=org_id, ImpersonationRoleId=role_id)["Token"]

        first = mint()
        assert impersonating_works(daemon, first, bob)

        # A member the rotation does not take: refused, nothing rotated.
        code, _, err = cli(daemon, "rotate-token-keys", "--key-id", "mine")
        assert code == 1 and "Exception" in err, err
        assert impersonating_works(daemon, first, bob)

        code, out, err = cli(daemon, "rotate-token-keys")
        assert code == 0, err
        key_id = json.loads(out)["KeyId"]
        second = mint()
        assert second != first
        assert impersonating_works(daemon, first, bob), "the key rotated out still verifies"
        assert impersonating_works(daemon, second, bob)
        code, out, err = cli(daemon, "rotate-token-keys")
        assert code == 0 and json.loads(out)["KeyId"] != key_id, err
        assert not impersonating_works(daemon, first, bob), "two rotations later the first key is gone"
        assert impersonating_works(daemon, second, bob)

        old = daemon.key()
        code, out, err = cli(daemon, "rotate-admin-key")
        assert code == 0, err
        answer = json.loads(out)
        new = (answer["AccessKeyId"], answer["SecretAccessKey"])
        assert new != old and daemon.key() == new, "the credentials file holds the new key"
        assert admin_key_works(daemon, new) and not admin_key_works(daemon, old)
        code, out, err = cli(daemon, "ListOrganizations")
        assert code == 0 and org_id in out, err
    finally:
        stop_daemon(daemon)

    # Both rotations are in the data directory's files: a restart keeps them.
    (daemon.data_dir / "run" / "ports.json").unlink(missing_ok=True)
    daemon = start_daemon(root, "[ews]\nenabled = true\n")
    try:
        assert admin_key_works(daemon, new) and not admin_key_works(daemon, old)
        assert impersonating_works(daemon, second, bob) and not impersonating_works(daemon, first, bob)
    finally:
        stop_daemon(daemon)
