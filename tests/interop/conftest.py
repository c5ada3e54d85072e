"""Fixtures for the interop tests: the real mailgate binary on port-0 https,
SMTP and IMAP listeners, in a temp dir, driven by real clients."""

import configparser
import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import time
import uuid

import boto3
import pytest


@dataclasses.dataclass
class Daemon:
    """A running mailgate and what a client needs to reach it."""

    endpoint: str
    ports: dict
    ca: str
    credentials: str
    data_dir: pathlib.Path
    proc: subprocess.Popen

    def key(self):
        """(access key id, secret) of the generated `mailgate` profile."""
        cp = configparser.ConfigParser()
        cp.read(self.credentials)
        p = cp["mailgate"]
        return p["aws_access_key_id"], p["aws_secret_access_key"]


# The only DNS the daemon's sender checks (SPF, DKIM, DMARC) see: nothing is
# ever queried from a test. pass.test may send from loopback; fail.test may not
# and asks for quarantine.
DNS_RECORDS = """\
pass.test. TXT "v=spf1 ip4:127.0.0.0/8 -all"
_dmarc.pass.test. TXT "v=DMARC1; p=reject"
fail.test. TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.fail.test. TXT "v=DMARC1; p=quarantine"
"""


def _config(data_dir, records, extra="", listener_extra=None):
    return (
        (
            "[server]\n"
            'hostname = "localhost"\n'
            f'data_dir = "{data_dir}"\n'
            "shutdown_grace_secs = 5\n"
        )
        + "".join(
            f'[listeners.{name}]\naddress = "127.0.0.1"\nport = 0\ntls = "{tls}"\n'
            + (listener_extra or {}).get(name, "")
            for name, tls in [
                ("https", "implicit"),
                ("smtp", "starttls"),
                ("submission", "starttls"),
                ("submissions", "implicit"),
                ("metrics", "none"),
                ("imap", "starttls"),
                ("imaps", "implicit"),
            ]
        )
        + f'[smtp.sender_auth]\nresolver = "static"\nstatic_records = "{records}"\n'
        + extra
    )


def start_daemon(root, extra="", listener_extra=None):
    """Starts `$MAILGATE_BIN serve` in `root` with the test listeners plus `extra`
    config (and `listener_extra[name]` lines in a listener's table), waits for
    data/run/ports.json and returns the Daemon."""
    binary = os.environ.get("MAILGATE_BIN")
    if not binary:
        pytest.skip("MAILGATE_BIN is not set")
    data = root / "data"
    cfg = root / "mailgate.toml"
    records = root / "dns-records.txt"
    records.write_text(DNS_RECORDS)
    cfg.write_text(_config(data, records, extra, listener_extra))
    log = open(root / "stderr.log", "wb")
    proc = subprocess.Popen(
        [binary, "serve", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    log.close()
    ports_file = data / "run" / "ports.json"
    deadline = time.monotonic() + 30
    while not ports_file.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"mailgate exited {proc.returncode}: {(root / 'stderr.log').read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("mailgate did not write ports.json in time")
        time.sleep(0.05)
    ports = json.loads(ports_file.read_text())
    return Daemon(
        endpoint=f"https://localhost:{ports['https']}",
        ports=ports,
        ca=str(data / "tls" / "ca.pem"),
        credentials=str(data / "admin-credentials"),
        data_dir=data,
        proc=proc,
    )


def stop_daemon(daemon):
    """SIGTERM, and the daemon must exit 0."""
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=30) == 0, (daemon.data_dir.parent / "stderr.log").read_text()


@pytest.fixture(scope="session")
def mailgate(tmp_path_factory):
    """Starts `$MAILGATE_BIN serve`, waits for data/run/ports.json, yields a
    Daemon, and at the end SIGTERMs it and checks that it exits 0."""
    daemon = start_daemon(tmp_path_factory.mktemp("mailgate"))
    yield daemon
    stop_daemon(daemon)


@pytest.fixture(scope="session")
def workmail(mailgate):
    """A boto3 `workmail` client: profile `mailgate` from the generated
    credentials file, region `local`, the daemon's CA verified."""
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = mailgate.credentials
    os.environ.pop("AWS_PROFILE", None)
    session = boto3.Session(profile_name="mailgate", region_name="local")
    return session.client("workmail", endpoint_url=mailgate.endpoint, verify=mailgate.ca)


def client_for(daemon):
    """A boto3 `workmail` client with the daemon's own access key, for daemons a
    test starts itself (the `workmail` fixture serves the session's daemon)."""
    key, secret = daemon.key()
    return boto3.client(
        "workmail", endpoint_url=daemon.endpoint, verify=daemon.ca, region_name="local",
        aws_access_key_id=key, aws_secret_access_key=secret,
    )


def admin_key_works(daemon, key):
    """Whether boto3 signing with `key` (id, secret) may call the daemon's admin API;
    a refusal must be the unknown-key one."""
    from botocore.exceptions import ClientError

    c = boto3.client(
        "workmail", endpoint_url=daemon.endpoint, verify=daemon.ca, region_name="local",
        aws_access_key_id=key[0], aws_secret_access_key=key[1],
    )
    try:
        c.list_organizations()
        return True
    except ClientError as e:
        assert e.response["Error"]["Code"] == "UnrecognizedClientException", e.response
        return False


GET_INBOX_AS = """<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"
 xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">
<soap:Header><t:RequestServerVersion Version="Exchange2010_SP2"/>
<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{address}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>
</soap:Header><soap:Body><m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>
<m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder></soap:Body></soap:Envelope>"""


def impersonating_works(daemon, token, address):
    """Whether an EWS GetFolder(inbox) impersonating `address` with the bearer
    `token` succeeds on `daemon`."""
    import requests

    r = requests.post(
        f"https://localhost:{daemon.ports['https']}/EWS/Exchange.asmx",
        data=GET_INBOX_AS.format(address=address).encode(),
        headers={"Content-Type": "text/xml; charset=utf-8", "Authorization": f"Bearer {token}"},
        verify=daemon.ca, timeout=10,
    )
    return r.status_code == 200 and b'ResponseClass="Success"' in r.content


def new_org(wm):
    """A fresh organization with its own alias and mail domain, so tests never
    share names, rules or limits. Returns (organization id, mail domain)."""
    tag = uuid.uuid4().hex[:10]
    domain = f"o{tag}.test"
    out = wm.create_organization(Alias=f"org-{tag}", Domains=[{"DomainName": domain}])
    return out["OrganizationId"], domain


@pytest.fixture
def org(workmail):
    """A fresh organization per test: (organization id, mail domain)."""
    return new_org(workmail)
