"""mailgate behind a load balancer: the smtp, imaps and submissions listeners marked
`proxy_protocol = true` for 127.0.0.1. Python sockets send a PROXY v1 or v2 header,
then smtplib and imaplib speak over the same socket (TLS wrapped after the header
on the implicit-TLS listeners). The declared client is the one in the
authentication audit records, in access rule decisions and in the Received trace;
a connection without a header is closed and counted."""

import imaplib
import ipaddress
import json
import smtplib
import socket
import struct
import urllib.request
import uuid

import pytest

from conftest import client_for, new_org, start_daemon, stop_daemon
from test_smtp import PASSWORD, delivered_to, message, new_user, tls_context

BEHIND_LB = 'proxy_protocol = true\nproxy_from = ["127.0.0.1/32"]\n'


def v1(client, port=40000, dport=993):
    family, dst = ("TCP6", "2001:db8::1") if ":" in client else ("TCP4", "10.0.0.1")
    return f"PROXY {family} {client} {dst} {port} {dport}\r\n".encode()


def v2(client, port=40000, dport=993, command=0x21):
    src = ipaddress.ip_address(client)
    dst = ipaddress.ip_address("10.0.0.1" if src.version == 4 else "2001:db8::1")
    family = 0x11 if src.version == 4 else 0x21
    addresses = src.packed + dst.packed + struct.pack("!HH", port, dport)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([command, family]) + struct.pack("!H", len(addresses)) + addresses


def imaps_behind(header):
    """IMAP4_SSL whose socket sends `header` before the ClientHello."""

    class Client(imaplib.IMAP4_SSL):
        def _create_socket(self, timeout):
            sock = imaplib.IMAP4._create_socket(self, timeout)
            sock.sendall(header)
            return self.ssl_context.wrap_socket(sock, server_hostname=self.host)

    return Client


def smtp_behind(header):
    """smtplib.SMTP whose socket sends `header` before the greeting is read."""

    class Client(smtplib.SMTP):
        def _get_socket(self, host, port, timeout):
            sock = super()._get_socket(host, port, timeout)
            sock.sendall(header)
            return sock

    return Client


def smtps_behind(header):
    """smtplib.SMTP_SSL whose socket sends `header` before the ClientHello."""

    class Client(smtplib.SMTP_SSL):
        def _get_socket(self, host, port, timeout):
            sock = socket.create_connection((host, port), timeout, self.source_address)
            sock.sendall(header)
            return self.context.wrap_socket(sock, server_hostname=self._host)

    return Client


@pytest.fixture(scope="module")
def lb(tmp_path_factory):
    daemon = start_daemon(
        tmp_path_factory.mktemp("proxy"),
        listener_extra={"imaps": BEHIND_LB, "smtp": BEHIND_LB, "submissions": BEHIND_LB},
    )
    wm = client_for(daemon)
    org, domain = new_org(wm)
    daemon.wm, daemon.org, daemon.domain = wm, org, domain
    yield daemon
    stop_daemon(daemon)


def auth_records(daemon, user):
    path = daemon.data_dir / "events" / "audit.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [r for r in records if r["log_type"] == "authentication" and r["user"] == user]


def wait_for(pred, timeout=10.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    return pred()


def metrics(daemon):
    with urllib.request.urlopen(f"http://127.0.0.1:{daemon.ports['metrics']}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {k: float(v) for k, v in (line.rsplit(" ", 1) for line in text.splitlines() if line and line[0] != "#")}


def test_imaps_login_is_audited_with_the_declared_client(lb):
    _, user = new_user(lb.wm, lb.org, lb.domain)
    for header, client in [(v1("198.51.100.7"), "198.51.100.7"), (v2("2001:db8::42"), "2001:db8::42")]:
        with imaps_behind(header)("localhost", lb.ports["imaps"], ssl_context=tls_context(lb)) as m:
            m.login(user, PASSWORD)
            assert m.select("INBOX")[0] == "OK"
            m.logout()
        records = wait_for(lambda: [r for r in auth_records(lb, user) if r["source_ip"] == client])
        assert records, auth_records(lb, user)
        assert records[0]["auth_successful"] is True and records[0]["protocol"] == "IMAP"
    assert all(r["source_ip"] != "127.0.0.1" for r in auth_records(lb, user)), "never the balancer's address"


def test_a_deny_rule_for_the_declared_network_refuses_the_login(lb):
    _, user = new_user(lb.wm, lb.org, lb.domain)
    lb.wm.put_access_control_rule(
        OrganizationId=lb.org, Name=f"no-imap-{uuid.uuid4().hex[:6]}", Effect="DENY",
        Description="doc network", IpRanges=["203.0.113.0/24"], Actions=["IMAP"],
    )
    with imaps_behind(v2("203.0.113.9"))("localhost", lb.ports["imaps"], ssl_context=tls_context(lb)) as m:
        with pytest.raises(imaplib.IMAP4.error):
            m.login(user, PASSWORD)
    # The same balancer, another client: allowed.
    with imaps_behind(v1("192.0.2.10"))("localhost", lb.ports["imaps"], ssl_context=tls_context(lb)) as m:
        m.login(user, PASSWORD)
        m.logout()
    records = wait_for(lambda: len(auth_records(lb, user)) >= 2 and auth_records(lb, user))
    assert [(r["source_ip"], r["auth_successful"]) for r in records] == [
        ("203.0.113.9", False),
        ("192.0.2.10", True),
    ]


def test_smtp_received_trace_and_submission_audit_name_the_declared_client(lb):
    _, alice = new_user(lb.wm, lb.org, lb.domain)
    _, bob = new_user(lb.wm, lb.org, lb.domain)
    subject = f"proxied {uuid.uuid4().hex}"
    with smtp_behind(v1("192.0.2.55", dport=25))("127.0.0.1", lb.ports["smtp"]) as s:
        assert s.send_message(message("someone@remote.test", bob, subject)) == {}
    assert delivered_to(lb, bob, subject)
    sub2 = f"submitted {uuid.uuid4().hex}"
    header = v2("198.51.100.77", dport=465)
    with smtps_behind(header)("localhost", lb.ports["submissions"], context=tls_context(lb)) as s:
        s.login(alice, PASSWORD)
        assert s.send_message(message(alice, bob, sub2)) == {}
    assert delivered_to(lb, bob, sub2)
    records = wait_for(lambda: auth_records(lb, alice))
    assert [(r["source_ip"], r["protocol"]) for r in records] == [("198.51.100.77", "SMTP")], records
    with imaps_behind(v1("192.0.2.1"))("localhost", lb.ports["imaps"], ssl_context=tls_context(lb)) as m:
        m.login(bob, PASSWORD)
        m.select("INBOX")
        _, data = m.search(None, "SUBJECT", f"\"{subject}\"")
        _, msg = m.fetch(data[0].split()[0], "(BODY.PEEK[HEADER])")
        assert b"([192.0.2.55])" in msg[0][1], msg[0][1]
        m.logout()


def test_without_a_header_the_connection_is_closed_and_counted(lb):
    before = metrics(lb).get('mailgate_listener_proxy_bad_header_total{listener="smtp"}', 0)
    # smtplib speaks first only after the greeting, which never comes.
    with socket.create_connection(("127.0.0.1", lb.ports["smtp"]), timeout=5) as sock:
        sock.sendall(b"EHLO direct.example\r\n")
        try:
            got = sock.recv(100)
        except ConnectionResetError:
            got = b""
        assert got == b"", got
    # An IMAPS client without the header fails its handshake.
    with pytest.raises((OSError, imaplib.IMAP4.abort)):
        imaplib.IMAP4_SSL("localhost", lb.ports["imaps"], ssl_context=tls_context(lb), timeout=5)
    after = wait_for(
        lambda: metrics(lb).get('mailgate_listener_proxy_bad_header_total{listener="smtp"}', 0) > before
        and metrics(lb)
    )
    assert after['mailgate_listener_proxy_bad_header_total{listener="imaps"}'] >= 1
    # LOCAL (a health check): served with the balancer's own address.
    with socket.create_connection(("127.0.0.1", lb.ports["smtp"]), timeout=5) as sock:
        sock.sendall(v2("127.0.0.1", command=0x20))
        assert sock.recv(100).startswith(b"220 ")
