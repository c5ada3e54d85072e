//! Autodiscover: how a client that knows only an email address (and a password)
//! finds EWS, IMAP and SMTP here. Four flavours, each its own file, all answering
//! from the same [`target`] decision and [`site`] URLs:
//!
//! - `pox`: `POST /autodiscover/autodiscover.xml`, the Outlook schema (Outlook,
//!   Thunderbird's account hub, Evolution), Basic authentication required;
//! - `soap`: `POST /autodiscover/autodiscover.svc` (and `/WSSecurity`),
//!   GetUserSettings (exchangelib, the EWS Managed API, Outlook for Mac); answers
//!   anonymous callers with URLs only;
//! - `json`: `GET /autodiscover/autodiscover.json/v1.0/{address}?Protocol=…` and
//!   `?Email=…` (newer Outlook), anonymous, URLs only;
//! - `autoconfig`: Thunderbird's ISPDB XML at `/mail/config-v1.1.xml` and
//!   `/.well-known/autoconfig/mail/config-v1.1.xml`, anonymous.
//!
//! Credentials, when sent, go through the shared login path with protocol
//! `AutoDiscover` (so its access rules and audit label apply); a refusal of any
//! kind is a 401. Nothing here is ever a 500: malformed, oversized or
//! DTD-carrying requests get the flavour's documented error.

mod autoconfig;
mod json;
mod pox;
mod site;
mod soap;
mod target;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use super::auth::{BasicLogins, BasicOutcome, Credentials, credentials};
use crate::access::Protocol;
use crate::access::login::{Authenticator, Session};
use crate::directory::Directory;
use crate::net::http::{Handler, HandlerFuture, HttpRequest, HttpResponse, Route};
use crate::shared::Shared;
pub use site::{Base, Site};

/// Largest POX or SOAP request read: exchangelib's 62-setting request is 5 KB,
/// a 100-user GetUserSettings about 40 KB.
const MAX_REQUEST: usize = 64 * 1024;

/// The state every Autodiscover endpoint shares.
pub struct Autodiscover {
    directory: Arc<Directory>,
    auth: Arc<Authenticator>,
    basic: BasicLogins,
    site: Site,
}

/// The Autodiscover routes for the https listener (mounted with EWS when
/// `[ews] enabled`).
pub fn routes(shared: &Shared) -> Vec<Route> {
    let ad = Arc::new(Autodiscover::new(
        shared.directory.clone(),
        shared.auth.clone(),
        Site::from_config(&shared.config),
    ));
    let at = |kind| {
        Arc::new(Endpoint {
            ad: ad.clone(),
            kind,
        })
    };
    vec![
        Route::exact("/autodiscover/autodiscover.xml", at(Kind::Pox)).max_body(MAX_REQUEST * 16),
        Route::exact("/autodiscover/autodiscover.svc", at(Kind::Soap)).max_body(MAX_REQUEST * 16),
        Route::exact("/autodiscover/autodiscover.svc/wssecurity", at(Kind::Soap))
            .max_body(MAX_REQUEST * 16),
        Route::prefix("/autodiscover/autodiscover.json", at(Kind::Json)),
        Route::exact("/mail/config-v1.1.xml", at(Kind::Autoconfig)),
        Route::exact(
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            at(Kind::Autoconfig),
        ),
    ]
}

impl Autodiscover {
    /// Autodiscover over this directory and these logins, describing `site`.
    pub fn new(directory: Arc<Directory>, auth: Arc<Authenticator>, site: Site) -> Autodiscover {
        Autodiscover {
            directory,
            basic: BasicLogins::new(auth.clone(), Protocol::AutoDiscover),
            auth,
            site,
        }
    }

    /// Checks Basic credentials (the `AutoDiscover` rules apply).
    async fn login(&self, req: &HttpRequest, login: &str, password: &str) -> Login {
        let ip = req.peer.ip().to_canonical();
        match self
            .basic
            .check(login, password, ip, req.header("user-agent"))
            .await
        {
            BasicOutcome::Ok(session) => Login::Ok(session),
            BasicOutcome::Failed => Login::Refused,
            BasicOutcome::Throttled(d) => Login::Throttled(d),
        }
    }

    /// What `caller` learns about `address` (see [`target`]).
    fn lookup(&self, caller: Option<&Session>, address: &str, redirect: bool) -> target::Lookup {
        target::lookup(
            &self.directory,
            self.auth.mailboxes(),
            caller,
            address,
            redirect,
        )
    }
}

/// The outcome of the credentials a request carried.
enum Login {
    Ok(Session),
    Refused,
    Throttled(std::time::Duration),
}

/// Which flavour a route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pox,
    Soap,
    Json,
    Autoconfig,
}

/// One route's handler.
pub struct Endpoint {
    pub ad: Arc<Autodiscover>,
    pub kind: Kind,
}

/// 401 offering Basic only (NTLM or Negotiate would be preferred by clients and
/// fail).
fn unauthorized() -> HttpResponse {
    let mut r = HttpResponse::new(401, "text/plain; charset=utf-8", "401 Unauthorized\n");
    r.headers
        .push(("www-authenticate", "Basic realm=\"autodiscover\"".into()));
    r
}

/// Too many failed logins from this client: come back later.
fn busy(retry: std::time::Duration) -> HttpResponse {
    let mut r = HttpResponse::new(
        503,
        "text/plain; charset=utf-8",
        "503 Too many failed logins; try again later\n",
    );
    let secs = retry.as_secs().clamp(1, 600);
    r.headers.push(("retry-after", secs.to_string()));
    r
}

fn method_not_allowed(allow: &str) -> HttpResponse {
    let mut r = HttpResponse::new(405, "text/plain; charset=utf-8", "405 Method Not Allowed\n");
    r.headers.push(("allow", allow.to_string()));
    r
}

/// The declared body length, when over [`MAX_REQUEST`].
fn oversized(head: &HttpRequest) -> bool {
    head.header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > MAX_REQUEST as u64)
}

impl Handler for Endpoint {
    fn admit(&self, head: &HttpRequest, max_body: usize) -> Result<usize, HttpResponse> {
        match self.kind {
            Kind::Pox => {
                if !matches!(
                    head.header("authorization").and_then(credentials),
                    Some(Credentials::Basic { .. })
                ) {
                    return Err(unauthorized());
                }
                if oversized(head) {
                    return Err(pox::error(pox::ErrorCode::InvalidRequest));
                }
                Ok(max_body.min(MAX_REQUEST))
            }
            Kind::Soap => {
                if oversized(head) {
                    return Err(soap::invalid_request(
                        "GetUserSettings",
                        "The request is larger than 64 KiB.",
                    ));
                }
                Ok(max_body.min(MAX_REQUEST))
            }
            Kind::Json | Kind::Autoconfig => Ok(max_body),
        }
    }

    fn handle(self: Arc<Self>, req: HttpRequest) -> HandlerFuture {
        Box::pin(async move {
            let ad = &self.ad;
            match self.kind {
                Kind::Pox => pox::answer(ad, &req).await,
                Kind::Soap => soap::answer(ad, &req).await,
                Kind::Json => json::answer(ad, &req),
                Kind::Autoconfig => autoconfig::answer(ad, &req),
            }
        })
    }
}

/// The resolved namespace of the first element at `path` (local names from the
/// root), `""` when it has none; `None` when there is no such element. For
/// documents [`super::xml::parse`] already accepted (well-formed, bounded, no DTD),
/// whose tree keeps local names only.
fn namespace_at(xml: &[u8], path: &[&str]) -> Option<String> {
    let mut reader = NsReader::from_reader(xml);
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut buf = Vec::new();
    loop {
        let (ns, event) = reader.read_resolved_event_into(&mut buf).ok()?;
        let (start, empty) = match &event {
            Event::Start(s) => (Some(s.local_name().as_ref().to_vec()), false),
            Event::Empty(s) => (Some(s.local_name().as_ref().to_vec()), true),
            Event::End(_) => {
                stack.pop();
                (None, false)
            }
            Event::Eof => return None,
            _ => (None, false),
        };
        if let Some(local) = start {
            stack.push(local);
            let here = stack.len() == path.len()
                && stack
                    .iter()
                    .zip(path)
                    .all(|(a, b)| a.as_slice() == b.as_bytes());
            if here {
                return Some(match ns {
                    ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
                    _ => String::new(),
                });
            }
            if empty {
                stack.pop();
            }
        }
        buf.clear();
    }
}

/// The value of a query parameter (name compared ignoring ASCII case),
/// percent-decoded; `+` stays itself (it is common in addresses, and no
/// address holds a space).
fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| percent_decode(k).is_some_and(|k| k.eq_ignore_ascii_case(name)))
        .and_then(|(_, v)| percent_decode(v))
}

/// `%XX` decoding into UTF-8; `None` for a bad escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn query_parameters_are_found_ignoring_case_and_decoded() {
        let q = "Email=a%2Bb%40acme.test&protocol=Ews&RedirectCount=1&flag";
        assert_eq!(query_param(q, "email").as_deref(), Some("a+b@acme.test"));
        assert_eq!(query_param(q, "PROTOCOL").as_deref(), Some("Ews"));
        assert_eq!(query_param(q, "flag").as_deref(), Some(""));
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(query_param("e=a+b@x", "e").as_deref(), Some("a+b@x"));
        assert_eq!(query_param("e=%zz", "e"), None);
        assert_eq!(query_param("e=%e2%82", "e"), None);
        assert_eq!(query_param("e=%4", "e"), None);
    }

    #[test]
    fn namespaces_are_resolved_along_a_path() {
        let doc = br#"<s:Envelope xmlns:s="S"><s:Header/><s:Body><GetUserSettingsRequestMessage xmlns="A"><x/></GetUserSettingsRequestMessage></s:Body></s:Envelope>"#;
        assert_eq!(namespace_at(doc, &["Envelope"]).as_deref(), Some("S"));
        assert_eq!(
            namespace_at(doc, &["Envelope", "Body", "GetUserSettingsRequestMessage"]).as_deref(),
            Some("A")
        );
        assert_eq!(
            namespace_at(doc, &["Envelope", "Header"]).as_deref(),
            Some("S")
        );
        assert_eq!(namespace_at(doc, &["Envelope", "Nope"]), None);
        assert_eq!(namespace_at(b"<a/>", &["a"]).as_deref(), Some(""));
    }

    proptest::proptest! {
        /// Whatever arrives, the request readers answer without panicking.
        #[test]
        fn request_readers_never_panic(text in ".{0,300}", bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = pox::parse_request(text.as_bytes());
            let _ = pox::parse_request(&bytes);
            let _ = soap::parse_request(text.as_bytes());
            let _ = soap::parse_request(&bytes);
            let _ = site::parse_host(&text);
            let _ = query_param(&text, "email");
            let _ = target::domain_of(&text);
            let _ = namespace_at(&bytes, &["a", "b"]);
        }

        #[test]
        fn soap_tag_soup_never_panics(parts in proptest::collection::vec(proptest::prop_oneof![
            "<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'>", "</s:Envelope>",
            "<s:Body>", "</s:Body>", "<a:GetUserSettingsRequestMessage xmlns:a='http://schemas.microsoft.com/exchange/2010/Autodiscover'>",
            "</a:GetUserSettingsRequestMessage>", "<a:Request>", "</a:Request>", "<a:Users><a:User><a:Mailbox>x@y</a:Mailbox></a:User></a:Users>",
            "<a:RequestedSettings>", "</a:RequestedSettings>", "<a:Setting>UserDN</a:Setting>", "&amp;", "<!DOCTYPE x>"], 0..30)) {
            let doc = parts.concat();
            let _ = soap::parse_request(doc.as_bytes());
        }
    }
}
