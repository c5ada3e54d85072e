//! EWS tests through the real handler (admit, then handle), on the shared test
//! harness: requests as clients write them, responses checked as they read them.

use std::sync::Arc;

use base64::Engine;

use super::auth::BasicLogins;
use super::service::Ews;
use super::xml::{Element, parse};
use crate::access::{Effect, ImpersonationRoleInput, ImpersonationRule, Protocol, RoleType};
use crate::net::http::{Handler, HttpRequest};
use crate::test_harness::{PASSWORD, World};

mod clients;
mod config;
mod folders;
mod items;
mod notify;
mod people;
mod probes;
mod properties;
mod protocol;
mod thunderbird;

/// A world and its EWS endpoint.
pub struct Fixture {
    pub world: World,
    pub ews: Arc<Ews>,
    /// What EWS handed to the submission path.
    pub sent: Arc<Recorder>,
}

/// One recorded submission: recipients, message, whether a copy was kept.
pub type Sent = (Vec<String>, Vec<u8>, bool);

/// A submission path that records what it is given (SMTP's own is tested with
/// SMTP, and with EWS end to end in the interop suite).
#[derive(Default)]
pub struct Recorder(
    pub std::sync::Mutex<Vec<Sent>>,
    /// The copies asked for, in order.
    pub std::sync::Mutex<Vec<crate::submission::SavedCopy>>,
);

#[async_trait::async_trait]
impl crate::submission::Submit for Recorder {
    async fn submit(
        &self,
        s: crate::submission::Submission<'_>,
    ) -> Result<crate::submission::Submitted, crate::submission::SubmitError> {
        if s.recipients.iter().any(|r| r.starts_with("nobody@")) {
            return Err(crate::submission::SubmitError::Recipient(
                "nobody@acme.test".into(),
                "user unknown",
            ));
        }
        self.1.lock().unwrap().extend(s.save_copy.clone());
        self.0
            .lock()
            .unwrap()
            .push((s.recipients, s.message, s.save_copy.is_some()));
        Ok(crate::submission::Submitted::default())
    }
}

impl Fixture {
    pub async fn new() -> Fixture {
        Fixture::with(|_, _, _, _| {}).await
    }

    /// A fixture whose directory `setup(directory, org, alice, bob)` extends.
    pub async fn with(
        setup: impl FnOnce(&crate::directory::Directory, &str, &str, &str) + Send + 'static,
    ) -> Fixture {
        let world = World::new(setup).await;
        let sent = Arc::new(Recorder::default());
        let ews = Arc::new(Ews {
            store: world.store.clone(),
            directory: world.directory.clone(),
            auth: world.auth.clone(),
            access: world.access.clone(),
            basic: BasicLogins::new(world.auth.clone(), Protocol::Ews),
            max_message_size: 40 << 20,
            subscriptions: Default::default(),
            metrics: Default::default(),
            submit: sent.clone(),
            site: crate::ews::autodiscover::Site::new(
                None,
                crate::ews::autodiscover::Base {
                    host: "mail.acme.test".into(),
                    port: None,
                },
                vec![],
                vec![],
            ),
        });
        Fixture { world, ews, sent }
    }

    /// Sends `body` with `authorization`; returns status, headers and body text.
    pub async fn raw(
        &self,
        authorization: Option<&str>,
        body: &str,
    ) -> (u16, Vec<(&'static str, String)>, String) {
        let r = self.respond(authorization, body).await;
        (
            r.status,
            r.headers,
            String::from_utf8_lossy(r.body.bytes()).into_owned(),
        )
    }

    /// Sends `body` with `authorization`; returns the response as the handler made it.
    pub async fn respond(
        &self,
        authorization: Option<&str>,
        body: &str,
    ) -> crate::net::http::HttpResponse {
        self.respond_declaring(authorization, body, body.len())
            .await
    }

    /// As [`Fixture::respond`], announcing `length` in Content-Length.
    pub async fn respond_declaring(
        &self,
        authorization: Option<&str>,
        body: &str,
        length: usize,
    ) -> crate::net::http::HttpResponse {
        self.respond_with(authorization, &[], body, length).await
    }

    /// As [`Fixture::respond_declaring`], with `extra` request headers.
    pub async fn respond_with(
        &self,
        authorization: Option<&str>,
        extra: &[(&str, &str)],
        body: &str,
        length: usize,
    ) -> crate::net::http::HttpResponse {
        let mut headers = vec![
            (
                "content-type".to_string(),
                "text/xml; charset=utf-8".to_string(),
            ),
            ("content-length".to_string(), length.to_string()),
        ];
        if let Some(a) = authorization {
            headers.push(("authorization".into(), a.to_string()));
        }
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut req = HttpRequest {
            method: "POST".into(),
            path: "/EWS/Exchange.asmx".into(),
            query: String::new(),
            headers,
            body: bytes::Bytes::new(),
            peer: "127.0.0.1:40000".parse().unwrap(),
        };
        let limit = match self.ews.admit(&req, 50 << 20) {
            Ok(limit) => limit,
            Err(r) => return r,
        };
        assert!(body.len() <= limit, "body over the admitted limit");
        req.body = bytes::Bytes::from(body.to_string());
        self.ews.clone().handle(req).await
    }

    /// A `GET` of `path?query` with `authorization` and a `Host` header, through
    /// admit and handle as the router would.
    pub async fn get(
        &self,
        authorization: Option<&str>,
        path: &str,
        query: &str,
        host: &str,
    ) -> crate::net::http::HttpResponse {
        let mut headers = vec![("host".to_string(), host.to_string())];
        if let Some(a) = authorization {
            headers.push(("authorization".into(), a.to_string()));
        }
        let req = HttpRequest {
            method: "GET".into(),
            path: path.into(),
            query: query.into(),
            headers,
            body: bytes::Bytes::new(),
            peer: "127.0.0.1:40000".parse().unwrap(),
        };
        if let Err(r) = self.ews.admit(&req, 0) {
            return r;
        }
        self.ews.clone().handle(req).await
    }

    /// Sends an operation as alice (Basic) and returns the parsed response
    /// envelope, asserting HTTP 200 and the ServerVersionInfo header.
    pub async fn call(&self, op: &str) -> Element {
        self.call_as(&basic("alice@acme.test", PASSWORD), "", op)
            .await
    }

    /// As [`Fixture::call`], with another Authorization and extra SOAP header content.
    pub async fn call_as(&self, authorization: &str, header: &str, op: &str) -> Element {
        let (status, _, body) = self.raw(Some(authorization), &envelope(header, op)).await;
        assert_eq!(status, 200, "{body}");
        let root = parse(body.as_bytes()).unwrap_or_else(|e| panic!("{e}: {body}"));
        let info = root
            .path(&["Header", "ServerVersionInfo"])
            .expect("ServerVersionInfo");
        assert_eq!(info.attr("Version"), Some("Exchange2016"));
        root
    }

    /// Alice's default folder of `kind`, as the store has it now.
    pub async fn folder(&self, kind: crate::store::FolderKind) -> crate::store::Folder {
        let folders = self.world.store.folders(&self.world.alice).await.unwrap();
        folders.into_iter().find(|x| x.kind == Some(kind)).unwrap()
    }

    /// A role (of `kind`) allowed to impersonate everyone, and a token for it.
    pub async fn role_token(&self, kind: RoleType) -> String {
        let (access, directory, org) = (
            self.world.access.clone(),
            self.world.directory.clone(),
            self.world.org.clone(),
        );
        blocking(move || Self::make_role(&access, &directory, &org, kind)).await
    }

    fn make_role(
        access: &crate::access::AccessEngine,
        directory: &crate::directory::Directory,
        org: &str,
        kind: RoleType,
    ) -> String {
        let input = ImpersonationRoleInput {
            name: format!("role-{kind:?}"),
            role_type: kind,
            description: None,
            rules: vec![ImpersonationRule {
                impersonation_rule_id: "all".into(),
                name: "all".into(),
                description: None,
                effect: Effect::Allow,
                target_users: Vec::new(),
                not_target_users: Vec::new(),
            }],
        };
        let now = crate::clock::now_ms_u64();
        let role = access
            .create_impersonation_role(org, input, None, directory, now)
            .unwrap();
        access
            .assume_impersonation_role(org, &role, now)
            .unwrap()
            .token
    }
}

/// Runs a blocking directory or access write off the runtime.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// `Basic base64(login:password)`.
pub fn basic(login: &str, password: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"));
    format!("Basic {b}")
}

/// A request envelope as exchangelib writes it.
pub fn envelope(header: &str, op: &str) -> String {
    format!(
        r#"<?xml version='1.0' encoding='utf-8'?>
<s:Envelope xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Header><t:RequestServerVersion Version="Exchange2016"/><t:TimeZoneContext><t:TimeZoneDefinition Id="Romance Standard Time"/></t:TimeZoneContext>{header}</s:Header><s:Body>{op}</s:Body></s:Envelope>"#
    )
}

/// The `ExchangeImpersonation` header for an address.
pub fn impersonating(address: &str) -> String {
    format!(
        "<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{address}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>"
    )
}

/// The response messages of an operation's response.
pub fn messages<'e>(root: &'e Element, op: &str) -> Vec<&'e Element> {
    root.path(&["Body", &format!("{op}Response"), "ResponseMessages"])
        .unwrap_or_else(|| panic!("no {op}Response in {root:?}"))
        .children
        .iter()
        .collect()
}

/// The ResponseCode of each message.
pub fn codes(root: &Element, op: &str) -> Vec<String> {
    messages(root, op)
        .iter()
        .map(|m| m.child_text("ResponseCode").unwrap_or("").to_string())
        .collect()
}

/// The EWS code of a SOAP fault response.
pub fn fault_code(body: &str) -> String {
    let root = parse(body.as_bytes()).unwrap();
    root.path(&["Body", "Fault", "detail", "ResponseCode"])
        .map(|c| c.text.clone())
        .unwrap_or_else(|| panic!("not a fault: {body}"))
}

/// Delivers a message to alice's folder of `kind`; returns its item id (wire form).
pub async fn deliver(
    f: &Fixture,
    kind: crate::store::FolderKind,
    raw: &str,
    date_ms: i64,
    flags: &[&str],
) -> String {
    let store = &f.world.store;
    store.create_mailbox(&f.world.alice, 1 << 30).await.unwrap();
    let target = crate::store::Target {
        folder: crate::store::FolderRef::Kind(f.world.alice.clone(), kind),
        flags: flags.iter().map(|s| s.to_string()).collect(),
        properties: Vec::new(),
    };
    let stored = store
        .deliver(Arc::from(raw.as_bytes()), date_ms, vec![target])
        .await
        .unwrap();
    let s = stored.into_iter().next().unwrap().unwrap();
    crate::ews::ids::EwsId::Item(s.item_id).encode()
}

pub fn mail(subject: &str, from: &str) -> String {
    format!(
        "From: {from}\r\nTo: Alice <alice@acme.test>\r\nSubject: {subject}\r\nMessage-ID: <{subject}@x>\r\nDate: Mon, 7 Dec 2026 05:00:00 +0000\r\nContent-Type: text/plain\r\n\r\nHello \u{1} body of {subject}\r\n"
    )
}
