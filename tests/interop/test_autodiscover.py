"""Autodiscover over the real https listener with the daemon's CA verified:
exchangelib's own GetUserSettings request and parser (with Basic credentials, and
anonymously as its auth probe and custom-auth scripts do), the v2 JSON endpoint
with requests, and the POX answer read for EXCH EwsUrl as Thunderbird does."""

import xml.etree.ElementTree as ET

import pytest
import requests

from conftest import client_for, new_org, start_daemon, stop_daemon
from test_smtp import PASSWORD, new_user

exchangelib = pytest.importorskip("exchangelib")

from exchangelib import BASIC, Configuration, Credentials  # noqa: E402
from exchangelib.autodiscover.protocol import AutodiscoverProtocol  # noqa: E402
from exchangelib.protocol import BaseProtocol  # noqa: E402
from exchangelib.transport import NOAUTH  # noqa: E402


@pytest.fixture(scope="module")
def ews_daemon(tmp_path_factory):
    """A daemon with EWS (and so Autodiscover) enabled."""
    daemon = start_daemon(tmp_path_factory.mktemp("autodiscover"), "[ews]\nenabled = true\n")
    yield daemon
    stop_daemon(daemon)


@pytest.fixture
def account(ews_daemon):
    """A fresh user: (address, display name)."""
    wm = client_for(ews_daemon)
    org_id, domain = new_org(wm)
    _, address = new_user(wm, org_id, domain)
    return address, address.split("@")[0]


@pytest.fixture
def verified_by_daemon_ca(ews_daemon):
    """Makes exchangelib's sessions verify TLS against the daemon's dev CA."""

    class DaemonCA(requests.adapters.HTTPAdapter):
        def cert_verify(self, conn, url, verify, cert):
            super().cert_verify(conn=conn, url=url, verify=ews_daemon.ca, cert=cert)

    saved = BaseProtocol.HTTP_ADAPTER_CLS
    BaseProtocol.HTTP_ADAPTER_CLS = DaemonCA
    yield
    BaseProtocol.HTTP_ADAPTER_CLS = saved


def svc_url(daemon):
    return f"{daemon.endpoint}/autodiscover/autodiscover.svc"


def test_exchangelib_get_user_settings_with_basic(ews_daemon, account, verified_by_daemon_ca):
    address, name = account
    protocol = AutodiscoverProtocol(
        config=Configuration(
            service_endpoint=svc_url(ews_daemon),
            credentials=Credentials(address, PASSWORD),
            auth_type=BASIC,
        )
    )
    # All 62 settings exchangelib knows, parsed by exchangelib itself.
    response = protocol.get_user_settings(user=address)
    response.raise_errors()
    assert response.ews_url == f"{ews_daemon.endpoint}/EWS/Exchange.asmx"
    assert response.user_settings["internal_ews_url"] == response.ews_url
    assert response.autodiscover_smtp_address == address
    assert response.version.api_version == "Exchange2016"
    assert response.user_settings["user_display_name"] == name


def test_exchangelib_anonymous_probe_and_settings(ews_daemon, account, verified_by_daemon_ca):
    address, _ = account
    protocol = AutodiscoverProtocol(config=Configuration(service_endpoint=svc_url(ews_daemon)))
    # The unauthenticated DUMMY@example.com probe gets a 200: no credentials needed.
    assert protocol.auth_type == NOAUTH
    response = protocol.get_user_settings(user=address)
    response.raise_errors()
    assert response.ews_url == f"{ews_daemon.endpoint}/EWS/Exchange.asmx"
    assert response.autodiscover_smtp_address == address
    assert "user_display_name" not in response.user_settings


def test_v2_json_and_pox(ews_daemon, account):
    address, _ = account
    ews = f"{ews_daemon.endpoint}/EWS/Exchange.asmx"
    r = requests.get(
        f"{ews_daemon.endpoint}/autodiscover/autodiscover.json/v1.0/{address}",
        params={"Protocol": "Ews"},
        verify=ews_daemon.ca,
    )
    assert r.status_code == 200
    assert r.json() == {"Protocol": "Ews", "Url": ews}
    r = requests.get(
        f"{ews_daemon.endpoint}/autodiscover/autodiscover.json",
        params={"Email": address, "Protocol": "ActiveSync"},
        verify=ews_daemon.ca,
    )
    assert r.json()["ErrorCode"] == "ProtocolNotSupported"

    body = f"""<?xml version="1.0" encoding="utf-8"?>
    <Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
      <Request>
        <EMailAddress>{address}</EMailAddress>
        <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
      </Request>
    </Autodiscover>"""
    url = f"{ews_daemon.endpoint}/autodiscover/autodiscover.xml"
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    r = requests.post(url, data=body, headers=headers, verify=ews_daemon.ca)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="autodiscover"'
    r = requests.post(url, data=body, headers=headers, auth=(address, PASSWORD), verify=ews_daemon.ca)
    assert r.status_code == 200
    ns = {"a": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
    root = ET.fromstring(r.content)
    exch = [
        p
        for p in root.findall("a:Response/a:Account/a:Protocol", ns)
        if p.findtext("a:Type", namespaces=ns) == "EXCH"
    ]
    assert [p.findtext("a:EwsUrl", namespaces=ns) for p in exch] == [ews]
    assert root.findtext("a:Response/a:User/a:AutoDiscoverSMTPAddress", namespaces=ns) == address
