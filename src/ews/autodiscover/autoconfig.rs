//! Thunderbird's autoconfig (the ISPDB `clientConfig` 1.1 format) at
//! `/mail/config-v1.1.xml?emailaddress=…` (host `autoconfig.<domain>`) and
//! `/.well-known/autoconfig/mail/config-v1.1.xml` (host `<domain>`). Anonymous,
//! as Thunderbird asks before it has a password: the answer is the same for every
//! address of a served domain, and 404 for any other domain.
//!
//! Lists every TLS listener with its mode spelled out (`SSL` or `STARTTLS`, which
//! this format, unlike POX, can say): IMAP, an `exchange` server with `ewsURL`
//! (Thunderbird's native EWS), and SMTP submission. The username is
//! `%EMAILADDRESS%`, which Thunderbird fills in.

use super::site::{Base, Security, Service, Site};
use super::target::domain_of;
use super::{Autodiscover, method_not_allowed, query_param};
use crate::ews::xml::Xml;
use crate::net::http::{HttpRequest, HttpResponse};

fn not_found() -> HttpResponse {
    HttpResponse::new(404, "text/plain; charset=utf-8", "not found\n")
}

/// Answers one autoconfig request.
pub fn answer(ad: &Autodiscover, req: &HttpRequest) -> HttpResponse {
    if req.method != "GET" && req.method != "HEAD" {
        return method_not_allowed("GET, HEAD");
    }
    let base = ad.site.base(req.header("host"));
    let domain = match query_param(&req.query, "emailaddress").filter(|e| !e.is_empty()) {
        Some(address) => match domain_of(address.trim()) {
            Some(d) => d.to_ascii_lowercase(),
            None => return not_found(),
        },
        // Without an address, the host asked: autoconfig.<domain> or <domain>.
        None => base
            .host
            .strip_prefix("autoconfig.")
            .unwrap_or(&base.host)
            .to_string(),
    };
    if ad.directory.domain_owner(&domain).is_none() {
        return not_found();
    }
    HttpResponse::new(
        200,
        "text/xml; charset=utf-8",
        document(&domain, &base, &ad.site),
    )
}

fn socket_type(s: &Service) -> &'static str {
    match s.security {
        Security::Implicit => "SSL",
        Security::StartTls => "STARTTLS",
    }
}

/// One `incomingServer` or `outgoingServer` for a listener.
fn server(x: &mut Xml, element: &str, kind: &str, host: &str, s: &Service) {
    x.open(element, &[("type", kind)])
        .leaf("hostname", host)
        .leaf("port", &s.port.to_string())
        .leaf("socketType", socket_type(s))
        .leaf("authentication", "password-cleartext")
        .leaf("username", "%EMAILADDRESS%")
        .close(element);
}

/// The `clientConfig` document for `domain`.
pub fn document(domain: &str, base: &Base, site: &Site) -> Vec<u8> {
    let mut x = Xml::new();
    x.open("clientConfig", &[("version", "1.1")])
        .open("emailProvider", &[("id", domain)])
        .leaf("domain", domain)
        .leaf("displayName", domain)
        .leaf("displayShortName", domain);
    for s in &site.imap {
        server(&mut x, "incomingServer", "imap", &base.host, s);
    }
    x.open("incomingServer", &[("type", "exchange")])
        .leaf("hostname", &base.host)
        .leaf("port", &base.port.unwrap_or(443).to_string())
        .leaf("socketType", "SSL")
        .leaf("authentication", "password-cleartext")
        .leaf("username", "%EMAILADDRESS%")
        .leaf("ewsURL", &base.ews_url())
        .close("incomingServer");
    for s in &site.smtp {
        server(&mut x, "outgoingServer", "smtp", &base.host, s);
    }
    x.close("emailProvider").close("clientConfig");
    x.finish()
}
