//! Autodiscover through the real handlers (admit, then handle) on the shared test
//! world: requests as Thunderbird, Evolution, exchangelib and Outlook send them,
//! answers read the way each of them reads them.

use std::sync::Arc;

use super::pox::{NS_OUTLOOK, NS_RESPONSE};
use super::site::{Base, Security, Service, Site};
use super::soap::{NS_AUTODISCOVER, SETTINGS};
use super::{Autodiscover, Endpoint, Kind, namespace_at};
use crate::access::AccessControlRuleInput;
use crate::directory::{NewUser, Permission};
use crate::ews::tests::{basic, blocking};
use crate::ews::xml::{Element, parse};
use crate::net::http::{Handler, HttpRequest};
use crate::test_harness::{PASSWORD, World};

const HOST: &str = "autodiscover.acme.test";
const EWS_URL: &str = "https://autodiscover.acme.test/EWS/Exchange.asmx";

struct Fixture {
    world: World,
    ad: Arc<Autodiscover>,
}

/// What a test sends.
struct Req<'a> {
    kind: Kind,
    method: &'a str,
    path: &'a str,
    query: &'a str,
    auth: Option<String>,
    host: Option<&'a str>,
    body: String,
    content_length: Option<&'a str>,
}

impl<'a> Req<'a> {
    fn new(kind: Kind, method: &'a str, path: &'a str) -> Req<'a> {
        Req {
            kind,
            method,
            path,
            query: "",
            auth: None,
            host: Some(HOST),
            body: String::new(),
            content_length: None,
        }
    }
}

/// What came back.
struct Res {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Res {
    fn xml(&self) -> Element {
        assert_eq!(self.status, 200, "{}", self.body);
        parse(self.body.as_bytes()).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn json(&self) -> serde_json::Value {
        assert_eq!(self.status, 200, "{}", self.body);
        serde_json::from_str(&self.body).unwrap()
    }

    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn site(public: Option<Base>) -> Site {
    Site::new(
        public,
        Base {
            host: "mx.acme.test".into(),
            port: Some(8443),
        },
        vec![
            Service {
                port: 993,
                security: Security::Implicit,
            },
            Service {
                port: 9143,
                security: Security::StartTls,
            },
        ],
        vec![
            Service {
                port: 465,
                security: Security::Implicit,
            },
            Service {
                port: 587,
                security: Security::StartTls,
            },
        ],
    )
}

impl Fixture {
    /// The harness world plus: alice's aliases ally@acme.test and
    /// alice@acme-mail.test (a second domain of the organization), and another
    /// organization `other.test` with user carol.
    async fn new() -> Fixture {
        Fixture::with_site(site(None)).await
    }

    async fn with_site(site: Site) -> Fixture {
        let world = World::new(|d, org, alice, _bob| {
            d.register_mail_domain(org, "acme-mail.test").unwrap();
            d.create_alias(org, alice, "ally@acme.test").unwrap();
            d.create_alias(org, alice, "alice@acme-mail.test").unwrap();
            let other = d.create_organization("other", "other.test").unwrap();
            let carol = d
                .create_user(
                    &other,
                    NewUser {
                        name: "carol",
                        display_name: "Carol",
                        password: Some(PASSWORD),
                        role: None,
                        first_name: None,
                        last_name: None,
                        hidden_from_gal: false,
                    },
                )
                .unwrap();
            d.register_to_workmail(&other, &carol, "carol@other.test")
                .unwrap();
        })
        .await;
        let ad = Arc::new(Autodiscover::new(
            world.directory.clone(),
            world.auth.clone(),
            site,
        ));
        Fixture { world, ad }
    }

    async fn send(&self, r: Req<'_>) -> Res {
        let endpoint = Arc::new(Endpoint {
            ad: self.ad.clone(),
            kind: r.kind,
        });
        let mut headers = vec![(
            "content-type".to_string(),
            "text/xml; charset=utf-8".to_string(),
        )];
        if let Some(a) = &r.auth {
            headers.push(("authorization".into(), a.clone()));
        }
        if let Some(h) = r.host {
            headers.push(("host".into(), h.to_string()));
        }
        let length = r
            .content_length
            .map(str::to_string)
            .unwrap_or_else(|| r.body.len().to_string());
        headers.push(("content-length".into(), length));
        let mut req = HttpRequest {
            method: r.method.into(),
            path: r.path.into(),
            query: r.query.into(),
            headers,
            body: bytes::Bytes::new(),
            peer: "127.0.0.1:40000".parse().unwrap(),
        };
        let res = match endpoint.admit(&req, 1 << 20) {
            Ok(limit) => {
                assert!(r.body.len() <= limit, "body over the admitted limit");
                req.body = bytes::Bytes::from(r.body);
                endpoint.clone().handle(req).await
            }
            Err(refusal) => refusal,
        };
        assert_ne!(res.status, 500);
        Res {
            status: res.status,
            body: String::from_utf8_lossy(res.body.bytes()).into_owned(),
            headers: res.headers,
        }
    }

    async fn pox(&self, auth: Option<String>, body: String) -> Res {
        let mut r = Req::new(Kind::Pox, "POST", "/autodiscover/autodiscover.xml");
        r.auth = auth;
        r.body = body;
        self.send(r).await
    }

    async fn soap(&self, auth: Option<String>, body: String) -> Res {
        let mut r = Req::new(Kind::Soap, "POST", "/autodiscover/autodiscover.svc");
        r.auth = auth;
        r.body = body;
        self.send(r).await
    }

    async fn get(&self, kind: Kind, path: &str, query: &str) -> Res {
        let mut r = Req::new(kind, "GET", path);
        r.query = query;
        self.send(r).await
    }

    async fn deny_autodiscover(&self) {
        let (access, org) = (self.world.access.clone(), self.world.org.clone());
        blocking(move || {
            let rule: AccessControlRuleInput = serde_json::from_value(serde_json::json!({
                "Name": "no-autodiscover", "Effect": "DENY", "Description": "",
                "IpRanges": ["127.0.0.0/8"], "Actions": ["AutoDiscover"]
            }))
            .unwrap();
            access
                .put_access_control_rule(&org, rule, crate::clock::now_ms_u64())
                .unwrap()
        })
        .await;
    }
}

fn alice() -> Option<String> {
    Some(basic("alice@acme.test", PASSWORD))
}

// ---------------------------------------------------------------- POX

/// The POX request Thunderbird and Evolution send.
fn pox_request(email: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
    <Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
      <Request>
        <EMailAddress>{email}</EMailAddress>
        <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
      </Request>
    </Autodiscover>"#
    )
}

/// A server as Thunderbird's `readAutoDiscoverXML` records it.
#[derive(Debug, PartialEq, Eq)]
struct TbServer {
    kind: String,
    host: String,
    port: u16,
    socket: &'static str,
    username: String,
}

/// What Thunderbird's account hub takes from a POX answer: EWS URL from
/// `Protocol Type=EXCH|EXHTTP` `EwsUrl` (fallback `ASUrl`), and IMAP/POP3/SMTP
/// servers whose socket type it guesses from `SSL`/`Encryption` and the port.
#[derive(Debug, Default)]
struct TbConfig {
    exchange_url: Option<String>,
    incoming: Vec<TbServer>,
    outgoing: Vec<TbServer>,
}

fn thunderbird_read(root: &Element) -> TbConfig {
    let account = root.path(&["Response", "Account"]).expect("Account");
    assert!(account.child("RedirectAddr").is_none());
    let mut config = TbConfig::default();
    for p in account.children_named("Protocol") {
        let kind = p.child_text("Type").unwrap_or("");
        match kind {
            "EXCH" | "EXHTTP" => {
                config.exchange_url = p
                    .child_text("EwsUrl")
                    .or(p.child_text("ASUrl"))
                    .map(str::to_string)
            }
            "IMAP" | "POP3" | "SMTP" => {
                let port: u16 = p.child_text("Port").unwrap().parse().unwrap();
                let plain = p
                    .child_text("SSL")
                    .is_some_and(|s| s.eq_ignore_ascii_case("off"))
                    || p.child_text("Encryption")
                        .is_some_and(|s| s.eq_ignore_ascii_case("none"));
                let socket = if plain {
                    "plain"
                } else if [143, 110, 25, 587].contains(&port) {
                    "STARTTLS"
                } else {
                    "SSL"
                };
                let server = TbServer {
                    kind: kind.to_ascii_lowercase(),
                    host: p.child_text("Server").unwrap().to_string(),
                    port,
                    socket,
                    username: p.child_text("LoginName").unwrap_or("%EMAILADDRESS%").into(),
                };
                if kind == "SMTP" {
                    config.outgoing.push(server);
                } else {
                    config.incoming.push(server);
                }
            }
            _ => {}
        }
    }
    config
}

/// Evolution's reading: `ASUrl` (required) and `OABUrl` from EXPR, else EXCH.
fn evolution_read(root: &Element) -> (String, Option<String>) {
    let account = root.path(&["Response", "Account"]).unwrap();
    let protocols: Vec<&Element> = account.children_named("Protocol").collect();
    let pick = protocols
        .iter()
        .find(|p| p.child_text("Type") == Some("EXPR"))
        .or_else(|| {
            protocols
                .iter()
                .find(|p| p.child_text("Type") == Some("EXCH"))
        })
        .expect("EXPR or EXCH");
    (
        pick.child_text("ASUrl").expect("ASUrl").to_string(),
        pick.child_text("OABUrl").map(str::to_string),
    )
}

fn pox_error_code(res: &Res) -> String {
    let root = res.xml();
    assert_eq!(
        namespace_at(res.body.as_bytes(), &["Autodiscover"]).as_deref(),
        Some(NS_RESPONSE)
    );
    root.path(&["Response", "Error", "ErrorCode"])
        .unwrap_or_else(|| panic!("not an error: {}", res.body))
        .text
        .clone()
}

#[tokio::test]
async fn pox_asks_for_basic_and_nothing_else() {
    let f = Fixture::new().await;
    for auth in [
        None,
        Some(basic("alice@acme.test", "wrong")),
        Some(basic("nobody@acme.test", PASSWORD)),
        Some("Bearer abc".to_string()),
        Some("NTLM TlRMTVNTUAABAAAA".to_string()),
    ] {
        let res = f.pox(auth.clone(), pox_request("alice@acme.test")).await;
        assert_eq!(res.status, 401, "{auth:?}");
        assert_eq!(
            res.header("www-authenticate"),
            ["Basic realm=\"autodiscover\""]
        );
    }
}

#[tokio::test]
async fn pox_answers_thunderbird_with_ews_and_the_tls_listeners() {
    let f = Fixture::new().await;
    let res = f.pox(alice(), pox_request("alice@acme.test")).await;
    let root = res.xml();
    let body = res.body.as_bytes();
    assert_eq!(
        namespace_at(body, &["Autodiscover"]).as_deref(),
        Some(NS_RESPONSE)
    );
    assert_eq!(
        namespace_at(body, &["Autodiscover", "Response"]).as_deref(),
        Some(NS_OUTLOOK)
    );
    let user = root.path(&["Response", "User"]).unwrap();
    assert_eq!(user.child_text("DisplayName"), Some("alice"));
    assert_eq!(
        user.child_text("AutoDiscoverSMTPAddress"),
        Some("alice@acme.test")
    );
    assert!(
        user.child_text("LegacyDN")
            .unwrap()
            .starts_with("/o=mailgate/")
    );
    assert_eq!(user.child_text("DeploymentId").unwrap().len(), 36);
    let account = root.path(&["Response", "Account"]).unwrap();
    assert_eq!(account.child_text("AccountType"), Some("email"));
    assert_eq!(account.child_text("Action"), Some("settings"));
    assert_eq!(account.child_text("MicrosoftOnline"), Some("False"));
    let types: Vec<&str> = account
        .children_named("Protocol")
        .map(|p| p.child_text("Type").unwrap())
        .collect();
    assert_eq!(types, ["EXCH", "EXPR", "WEB", "IMAP", "SMTP", "SMTP"]);

    let tb = thunderbird_read(&root);
    assert_eq!(tb.exchange_url.as_deref(), Some(EWS_URL));
    let server = |kind: &str, port, socket| TbServer {
        kind: kind.into(),
        host: HOST.into(),
        port,
        socket,
        username: "alice@acme.test".into(),
    };
    // The STARTTLS IMAP listener on 9143 is left out: Thunderbird would take
    // it for implicit TLS.
    assert_eq!(tb.incoming, [server("imap", 993, "SSL")]);
    assert_eq!(
        tb.outgoing,
        [server("smtp", 465, "SSL"), server("smtp", 587, "STARTTLS")]
    );

    let (as_url, oab) = evolution_read(&root);
    assert_eq!(as_url, EWS_URL);
    assert_eq!(oab.as_deref(), Some("https://autodiscover.acme.test/OAB/"));
    let expr = account
        .children_named("Protocol")
        .find(|p| p.child_text("Type") == Some("EXPR"))
        .unwrap();
    assert_eq!(expr.child_text("SSL"), Some("On"));
    assert_eq!(expr.child_text("AuthPackage"), Some("Basic"));
    assert_eq!(expr.child_text("Server"), Some(HOST));
}

#[tokio::test]
async fn pox_aliases_answer_with_the_primary_or_redirect_across_domains() {
    let f = Fixture::new().await;
    let root = f.pox(alice(), pox_request("ALLY@acme.test")).await.xml();
    assert_eq!(
        root.path(&["Response", "User", "AutoDiscoverSMTPAddress"])
            .map(|e| e.text.as_str()),
        Some("alice@acme.test")
    );
    let root = f
        .pox(alice(), pox_request("alice@acme-mail.test"))
        .await
        .xml();
    let account = root.path(&["Response", "Account"]).unwrap();
    assert_eq!(account.child_text("Action"), Some("redirectAddr"));
    assert_eq!(account.child_text("RedirectAddr"), Some("alice@acme.test"));
    assert!(account.child("Protocol").is_none());
    // Logging in with an alias works the same.
    let via_alias = Some(basic("alice@acme-mail.test", PASSWORD));
    let root = f.pox(via_alias, pox_request("alice@acme.test")).await.xml();
    assert_eq!(
        root.path(&["Response", "Account", "Action"])
            .map(|e| e.text.as_str()),
        Some("settings")
    );
}

#[tokio::test]
async fn pox_tells_only_what_the_user_may_see() {
    let f = Fixture::new().await;
    for other in [
        "bob@acme.test",
        "nobody@acme.test",
        "carol@other.test",
        "someone@elsewhere.test",
    ] {
        let res = f.pox(alice(), pox_request(other)).await;
        assert_eq!(pox_error_code(&res), "501", "{other}");
    }
    // FULL_ACCESS on bob's mailbox: bob's settings, alice's login.
    let (d, org, alice_id, bob_id) = (
        f.world.directory.clone(),
        f.world.org.clone(),
        f.world.alice.clone(),
        f.world.bob.clone(),
    );
    blocking(move || {
        d.put_mailbox_permissions(&org, &bob_id, &alice_id, &[Permission::FullAccess])
            .unwrap()
    })
    .await;
    let root = f.pox(alice(), pox_request("bob@acme.test")).await.xml();
    let user = root.path(&["Response", "User"]).unwrap();
    assert_eq!(
        user.child_text("AutoDiscoverSMTPAddress"),
        Some("bob@acme.test")
    );
    assert_eq!(user.child_text("DisplayName"), Some("bob"));
    let tb = thunderbird_read(&root);
    assert!(tb.incoming.iter().all(|s| s.username == "alice@acme.test"));
}

#[tokio::test]
async fn pox_bad_requests_get_documented_errors_never_a_500() {
    let f = Fixture::new().await;
    let deep = "<a>".repeat(10_000) + &"</a>".repeat(10_000);
    let cases = [
        ("not xml", "600"),
        ("<Autodiscover><Request>", "600"),
        (
            r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "alice@acme.test">]><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>&e;</EMailAddress></Request></Autodiscover>"#,
            "600",
        ),
        (deep.as_str(), "600"),
        (
            &pox_request("alice@acme.test").replace("outlook/requestschema", "wrong/requestschema"),
            "600",
        ),
        (&pox_request(""), "600"),
        (&pox_request("not-an-address"), "600"),
        (
            &pox_request("alice@acme.test").replace(
                "outlook/responseschema/2006a",
                "mobilesync/responseschema/2006",
            ),
            "601",
        ),
    ];
    for (body, code) in cases {
        let res = f.pox(alice(), body.to_string()).await;
        assert_eq!(pox_error_code(&res), code, "{body:.80}");
    }
    // Announced as huge: refused before the body is read.
    let mut r = Req::new(Kind::Pox, "POST", "/autodiscover/autodiscover.xml");
    r.auth = alice();
    r.content_length = Some("52428800");
    assert_eq!(pox_error_code(&f.send(r).await), "600");
    // A GET after authentication.
    let mut r = Req::new(Kind::Pox, "GET", "/autodiscover/autodiscover.xml");
    r.auth = alice();
    assert_eq!(pox_error_code(&f.send(r).await), "600");
}

#[tokio::test]
async fn a_deny_autodiscover_rule_is_a_failed_login() {
    let f = Fixture::new().await;
    assert_eq!(
        f.pox(alice(), pox_request("alice@acme.test")).await.status,
        200
    );
    f.deny_autodiscover().await;
    let res = f.pox(alice(), pox_request("alice@acme.test")).await;
    assert_eq!(res.status, 401);
    assert_eq!(
        res.header("www-authenticate"),
        ["Basic realm=\"autodiscover\""]
    );
    let res = f
        .soap(alice(), gus(&["alice@acme.test"], &["ExternalEwsUrl"]))
        .await;
    assert_eq!(res.status, 401);
}

// ---------------------------------------------------------------- SOAP

/// GetUserSettings as exchangelib writes it.
fn gus(users: &[&str], settings: &[&str]) -> String {
    let users: String = users
        .iter()
        .map(|u| format!("<a:User><a:Mailbox>{u}</a:Mailbox></a:User>"))
        .collect();
    let settings: String = settings
        .iter()
        .map(|s| format!("<a:Setting>{s}</a:Setting>"))
        .collect();
    format!(
        r#"<?xml version='1.0' encoding='utf-8'?>
<s:Envelope xmlns:a="http://schemas.microsoft.com/exchange/2010/Autodiscover" xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><s:Header><a:RequestedServerVersion>Exchange2016</a:RequestedServerVersion><wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings</wsa:Action><wsa:To>https://autodiscover.acme.test/autodiscover/autodiscover.svc</wsa:To></s:Header><s:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users>{users}</a:Users><a:RequestedSettings>{settings}</a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage></s:Body></s:Envelope>"#
    )
}

/// One UserResponse as exchangelib's `UserResponse.from_xml` reads it.
#[derive(Debug, Default)]
struct XlUser {
    error_code: String,
    settings: Vec<(String, Option<String>)>,
    errors: Vec<(String, String)>,
}

impl XlUser {
    fn get(&self, name: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// `raise_errors`: per-setting errors other than the two harmless ones fail.
    fn harmless(&self) -> bool {
        self.errors
            .iter()
            .all(|(_, code)| code == "InvalidSetting" || code == "SettingIsNotAvailable")
    }

    /// `UserResponse.version`: the newest schema by string order, which must be
    /// one exchangelib knows.
    fn version(&self) -> Option<String> {
        let mut schemas: Vec<&str> = self
            .get("EwsSupportedSchemas")?
            .split(',')
            .map(str::trim)
            .collect();
        schemas.sort();
        let newest = schemas.last()?.to_string();
        let known = [
            "Exchange2007",
            "Exchange2007_SP1",
            "Exchange2010",
            "Exchange2010_SP1",
            "Exchange2010_SP2",
            "Exchange2013",
            "Exchange2013_SP1",
            "Exchange2016",
        ];
        assert!(known.contains(&newest.as_str()), "{newest}");
        Some(newest)
    }
}

/// exchangelib's parse: the Response ErrorCode, then every UserResponse; a
/// returned name it did not ask for is a KeyError there, a test failure here.
fn exchangelib_read(res: &Res, asked: &[&str]) -> Vec<XlUser> {
    let root = res.xml();
    let body = res.body.as_bytes();
    let action = root.path(&["Header", "Action"]).expect("wsa:Action");
    assert_eq!(
        action.text,
        "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettingsResponse"
    );
    assert_eq!(action.attr("mustUnderstand"), Some("1"));
    assert_eq!(
        namespace_at(
            body,
            &["Envelope", "Header", "ServerVersionInfo", "MajorVersion"]
        )
        .as_deref(),
        Some(NS_AUTODISCOVER)
    );
    let message = root
        .path(&["Body", "GetUserSettingsResponseMessage"])
        .expect("GetUserSettingsResponseMessage");
    assert_eq!(
        namespace_at(
            body,
            &[
                "Envelope",
                "Body",
                "GetUserSettingsResponseMessage",
                "Response"
            ]
        )
        .as_deref(),
        Some(NS_AUTODISCOVER)
    );
    let response = message.child("Response").unwrap();
    assert_eq!(
        response.child_text("ErrorCode"),
        Some("NoError"),
        "{}",
        res.body
    );
    let known = |n: &str| {
        assert!(asked.contains(&n), "{n} was not asked for");
    };
    response
        .child("UserResponses")
        .unwrap()
        .children_named("UserResponse")
        .map(|u| {
            let mut out = XlUser {
                error_code: u.child_text("ErrorCode").unwrap().to_string(),
                ..XlUser::default()
            };
            if let Some(errors) = u.child("UserSettingErrors") {
                for e in &errors.children {
                    let name = e.child_text("SettingName").unwrap();
                    known(name);
                    out.errors
                        .push((name.into(), e.child_text("ErrorCode").unwrap().into()));
                }
            }
            if let Some(settings) = u.child("UserSettings") {
                for s in &settings.children {
                    let name = s.child_text("Name").unwrap();
                    known(name);
                    out.settings
                        .push((name.into(), s.child_text("Value").map(str::to_string)));
                }
            }
            out
        })
        .collect()
}

#[tokio::test]
async fn soap_anonymous_gets_urls_and_the_address_only() {
    let f = Fixture::new().await;
    let res = f.soap(None, gus(&["alice@acme.test"], &SETTINGS)).await;
    let users = exchangelib_read(&res, &SETTINGS);
    assert_eq!(users.len(), 1);
    let u = &users[0];
    assert_eq!(u.error_code, "NoError");
    assert!(u.harmless(), "{:?}", u.errors);
    // Every requested name is answered exactly once.
    let mut answered: Vec<&str> = u
        .settings
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(u.errors.iter().map(|(n, _)| n.as_str()))
        .collect();
    answered.sort();
    let mut asked = SETTINGS.to_vec();
    asked.sort();
    assert_eq!(answered, asked);
    assert_eq!(u.get("ExternalEwsUrl"), Some(EWS_URL));
    assert_eq!(u.get("InternalEwsUrl"), Some(EWS_URL));
    assert_eq!(u.get("AutoDiscoverSMTPAddress"), Some("alice@acme.test"));
    assert_eq!(u.version().as_deref(), Some("Exchange2016"));
    for private in ["UserDisplayName", "UserDN", "UserDeploymentId", "MailboxDN"] {
        assert!(
            u.errors
                .contains(&(private.to_string(), "SettingIsNotAvailable".to_string())),
            "{private}"
        );
    }
    // A mailbox that does not exist looks the same to an anonymous caller.
    let res = f.soap(None, gus(&["nobody@acme.test"], &SETTINGS)).await;
    let nobody = &exchangelib_read(&res, &SETTINGS)[0];
    assert_eq!(nobody.error_code, "NoError");
    assert_eq!(nobody.get("ExternalEwsUrl"), Some(EWS_URL));
    assert_eq!(
        nobody.get("AutoDiscoverSMTPAddress"),
        Some("nobody@acme.test")
    );
    // exchangelib's auth probe: 200 (so no credentials are needed), InvalidDomain.
    let asked = ["AutoDiscoverSMTPAddress"];
    let res = f.soap(None, gus(&["DUMMY@example.com"], &asked)).await;
    assert_eq!(
        exchangelib_read(&res, &asked)[0].error_code,
        "InvalidDomain"
    );
}

#[tokio::test]
async fn soap_signed_in_users_get_their_own_settings_in_full() {
    let f = Fixture::new().await;
    let res = f
        .soap(
            alice(),
            gus(
                &[
                    "ally@acme.test",
                    "nobody@acme.test",
                    "bob@acme.test",
                    "carol@other.test",
                    "x@nowhere.test",
                    "junk",
                ],
                &SETTINGS,
            ),
        )
        .await;
    let users = exchangelib_read(&res, &SETTINGS);
    let codes: Vec<&str> = users.iter().map(|u| u.error_code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "NoError",
            "InvalidUser",
            "NoError",
            "NoError",
            "InvalidDomain",
            "InvalidUser"
        ]
    );
    let me = &users[0];
    assert_eq!(me.get("UserDisplayName"), Some("alice"));
    assert_eq!(me.get("AutoDiscoverSMTPAddress"), Some("alice@acme.test"));
    assert!(me.get("UserDN").unwrap().ends_with(&f.world.alice));
    assert!(me.get("MailboxDN").is_some());
    assert!(me.harmless());
    // bob (no grant) and carol (another organization): URLs only.
    for u in &users[2..4] {
        assert_eq!(u.get("UserDisplayName"), None);
        assert_eq!(u.get("ExternalEwsUrl"), Some(EWS_URL));
    }
    let res = f
        .soap(
            Some(basic("alice@acme.test", "wrong")),
            gus(&["alice@acme.test"], &SETTINGS),
        )
        .await;
    assert_eq!(res.status, 401);
    assert_eq!(
        res.header("www-authenticate"),
        ["Basic realm=\"autodiscover\""]
    );
}

#[tokio::test]
async fn soap_names_only_what_was_asked_as_it_was_spelled() {
    let f = Fixture::new().await;
    let asked = [
        "externalewsurl",
        "ExternalEwsUrl",
        "NoSuchSetting",
        "ExternalImap4Connections",
        "ExternalPop3Connections",
    ];
    let res = f.soap(None, gus(&["alice@acme.test"], &asked)).await;
    let u = &exchangelib_read(&res, &asked)[0];
    assert_eq!(u.settings.len(), 2, "{:?}", u.settings);
    assert_eq!(u.get("externalewsurl"), Some(EWS_URL));
    assert_eq!(
        u.errors,
        [
            ("NoSuchSetting".to_string(), "InvalidSetting".to_string()),
            (
                "ExternalPop3Connections".into(),
                "SettingIsNotAvailable".into()
            )
        ]
    );
    // The IMAP listeners, each with its TLS mode.
    let root = res.xml();
    let setting = root
        .path(&[
            "Body",
            "GetUserSettingsResponseMessage",
            "Response",
            "UserResponses",
            "UserResponse",
            "UserSettings",
        ])
        .unwrap()
        .children
        .iter()
        .find(|s| s.child_text("Name") == Some("ExternalImap4Connections"))
        .unwrap();
    assert_eq!(
        setting.attr("type"),
        Some("ProtocolConnectionCollectionSetting")
    );
    let conns: Vec<(&str, &str, &str)> = setting
        .child("ProtocolConnections")
        .unwrap()
        .children
        .iter()
        .map(|c| {
            (
                c.child_text("EncryptionMethod").unwrap(),
                c.child_text("Hostname").unwrap(),
                c.child_text("Port").unwrap(),
            )
        })
        .collect();
    assert_eq!(conns, [("SSL", HOST, "993"), ("TLS", HOST, "9143")]);
}

/// The Response ErrorCode of a whole-request error, and the message element's name.
fn soap_error(res: &Res) -> (String, String) {
    let root = res.xml();
    let message = &root.child("Body").unwrap().children[0];
    let code = message
        .path(&["Response", "ErrorCode"])
        .unwrap()
        .text
        .clone();
    (message.name.clone(), code)
}

#[tokio::test]
async fn soap_bad_requests_are_invalid_request_never_a_500() {
    let f = Fixture::new().await;
    let good = gus(&["alice@acme.test"], &["ExternalEwsUrl"]);
    let invalid = (
        "GetUserSettingsResponseMessage".to_string(),
        "InvalidRequest".to_string(),
    );
    let deep = "<a>".repeat(10_000) + &"</a>".repeat(10_000);
    let hundred_one: Vec<String> = (0..101).map(|i| format!("u{i}@acme.test")).collect();
    let hundred_one: Vec<&str> = hundred_one.iter().map(String::as_str).collect();
    for body in [
        "garbage".to_string(),
        deep,
        good.replace(
            "<?xml version='1.0' encoding='utf-8'?>",
            "<?xml version='1.0'?><!DOCTYPE s [<!ENTITY x 'y'>]>",
        ),
        good.replace("2010/Autodiscover\"", "2010/Elsewhere\""),
        good.replace("schemas.xmlsoap.org/soap/envelope/", "example.com/envelope"),
        gus(&[], &["ExternalEwsUrl"]),
        gus(&["alice@acme.test"], &[]),
        gus(&hundred_one, &["ExternalEwsUrl"]),
        gus(&["alice@acme.test"], &["ExternalEwsUrl"; 257]),
        good.replace("<s:Body>", "<s:Body/><s:Nope>")
            .replace("</s:Body>", "</s:Nope>"),
    ] {
        assert_eq!(
            soap_error(&f.soap(None, body.clone()).await),
            invalid,
            "{body:.100}"
        );
    }
    let domain = good.replace(
        "GetUserSettingsRequestMessage",
        "GetDomainSettingsRequestMessage",
    );
    assert_eq!(
        soap_error(&f.soap(None, domain).await),
        (
            "GetDomainSettingsResponseMessage".to_string(),
            "InvalidRequest".to_string()
        )
    );
    let mut r = Req::new(Kind::Soap, "POST", "/autodiscover/autodiscover.svc");
    r.content_length = Some("10485760");
    assert_eq!(soap_error(&f.send(r).await), invalid);
    // A probe (exchangelib's HEAD, a browser's GET) is answered; PUT is not.
    assert_eq!(
        f.get(Kind::Soap, "/autodiscover/autodiscover.svc", "")
            .await
            .status,
        200
    );
    let r = Req::new(Kind::Soap, "PUT", "/autodiscover/autodiscover.svc");
    assert_eq!(f.send(r).await.status, 405);
}

#[tokio::test]
async fn a_public_url_wins_over_the_host_header_and_junk_hosts_are_ignored() {
    let public = Base {
        host: "mail.acme.test".into(),
        port: Some(8443),
    };
    let f = Fixture::with_site(site(Some(public))).await;
    let asked = ["ExternalEwsUrl"];
    let res = f.soap(None, gus(&["alice@acme.test"], &asked)).await;
    assert_eq!(
        exchangelib_read(&res, &asked)[0].get("ExternalEwsUrl"),
        Some("https://mail.acme.test:8443/EWS/Exchange.asmx")
    );
    let f = Fixture::new().await;
    let mut r = Req::new(Kind::Soap, "POST", "/autodiscover/autodiscover.svc");
    r.host = Some("evil.test/<x>");
    r.body = gus(&["alice@acme.test"], &asked);
    let res = f.send(r).await;
    assert_eq!(
        exchangelib_read(&res, &asked)[0].get("ExternalEwsUrl"),
        Some("https://mx.acme.test:8443/EWS/Exchange.asmx")
    );
}

// ---------------------------------------------------------------- v2 JSON

#[tokio::test]
async fn json_answers_ews_and_autodiscover_v1_urls() {
    let f = Fixture::new().await;
    let j = f
        .get(
            Kind::Json,
            "/autodiscover/autodiscover.json/v1.0/alice@acme.test",
            "Protocol=Ews",
        )
        .await
        .json();
    assert_eq!(j, serde_json::json!({"Protocol": "Ews", "Url": EWS_URL}));
    let j = f
        .get(
            Kind::Json,
            "/Autodiscover/Autodiscover.json",
            "Email=nobody%40acme.test&Protocol=Autodiscoverv1&RedirectCount=1",
        )
        .await
        .json();
    assert_eq!(
        j,
        serde_json::json!({"Protocol": "AutodiscoverV1", "Url": "https://autodiscover.acme.test/autodiscover/autodiscover.xml"})
    );
    let path = "/autodiscover/autodiscover.json/v1.0/alice@acme.test";
    let code = |j: serde_json::Value| j["ErrorCode"].as_str().unwrap().to_string();
    assert_eq!(
        code(f.get(Kind::Json, path, "Protocol=ActiveSync").await.json()),
        "ProtocolNotSupported"
    );
    assert_eq!(
        code(f.get(Kind::Json, path, "Protocol=<b>").await.json()),
        "ProtocolNotSupported"
    );
    assert_eq!(
        code(f.get(Kind::Json, path, "").await.json()),
        "MissingProtocol"
    );
    assert_eq!(
        code(
            f.get(
                Kind::Json,
                "/autodiscover/autodiscover.json",
                "Protocol=Ews"
            )
            .await
            .json()
        ),
        "MandatoryParameterMissing"
    );
    assert_eq!(
        code(
            f.get(
                Kind::Json,
                "/autodiscover/autodiscover.json/v1.0/a@elsewhere.test",
                "Protocol=Ews"
            )
            .await
            .json()
        ),
        "InvalidDomain"
    );
    assert_eq!(
        f.get(Kind::Json, "/autodiscover/autodiscover.jsonp", "")
            .await
            .status,
        404
    );
    let r = Req::new(Kind::Json, "POST", path);
    assert_eq!(f.send(r).await.status, 405);
}

// ---------------------------------------------------------------- autoconfig

#[tokio::test]
async fn autoconfig_lists_imap_ews_and_submission_with_their_tls_modes() {
    let f = Fixture::new().await;
    let res = f
        .get(
            Kind::Autoconfig,
            "/mail/config-v1.1.xml",
            "emailaddress=alice%40acme.test",
        )
        .await;
    let root = res.xml();
    assert_eq!(root.name, "clientConfig");
    assert_eq!(root.attr("version"), Some("1.1"));
    let provider = root.child("emailProvider").unwrap();
    assert_eq!(provider.attr("id"), Some("acme.test"));
    assert_eq!(provider.child_text("domain"), Some("acme.test"));
    let servers = |name: &str| -> Vec<(String, String, String)> {
        provider
            .children_named(name)
            .map(|s| {
                (
                    s.attr("type").unwrap().to_string(),
                    s.child_text("port").unwrap().to_string(),
                    s.child_text("socketType").unwrap().to_string(),
                )
            })
            .collect()
    };
    let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        servers("incomingServer"),
        [
            t("imap", "993", "SSL"),
            t("imap", "9143", "STARTTLS"),
            t("exchange", "443", "SSL")
        ]
    );
    assert_eq!(
        servers("outgoingServer"),
        [t("smtp", "465", "SSL"), t("smtp", "587", "STARTTLS")]
    );
    let exchange = provider
        .children_named("incomingServer")
        .find(|s| s.attr("type") == Some("exchange"))
        .unwrap();
    assert_eq!(exchange.child_text("ewsURL"), Some(EWS_URL));
    assert!(
        provider
            .children_named("incomingServer")
            .all(|s| s.child_text("hostname") == Some(HOST)
                && s.child_text("username") == Some("%EMAILADDRESS%"))
    );
    // The well-known path, and the domain from the Host when no address is given.
    let mut r = Req::new(
        Kind::Autoconfig,
        "GET",
        "/.well-known/autoconfig/mail/config-v1.1.xml",
    );
    r.host = Some("autoconfig.acme.test");
    let res = f.send(r).await;
    assert_eq!(
        res.xml().child("emailProvider").unwrap().attr("id"),
        Some("acme.test")
    );
    for query in ["emailaddress=x%40elsewhere.test", "emailaddress=junk"] {
        assert_eq!(
            f.get(Kind::Autoconfig, "/mail/config-v1.1.xml", query)
                .await
                .status,
            404
        );
    }
}
