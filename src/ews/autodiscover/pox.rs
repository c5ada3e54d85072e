//! POX Autodiscover (`POST /autodiscover/autodiscover.xml`, the Outlook 2006a
//! response schema): what Outlook, Thunderbird's account hub and Evolution read.
//!
//! The answer names EWS three ways, because each client looks in its own place:
//! `Protocol Type=EXCH` `EwsUrl` (Thunderbird), `Type=EXPR` `ASUrl` (Evolution,
//! which prefers EXPR) and `Type=WEB` (Outlook). IMAP and SMTP submission
//! listeners follow as `Protocol Type=IMAP|SMTP`, implicit TLS first. Thunderbird
//! ignores `Encryption` and guesses STARTTLS only on ports 143 and 587 (implicit
//! TLS on any other), so a STARTTLS listener is advertised only on its standard
//! port; autoconfig and SOAP, which say the mode explicitly, list them all.
//! Errors are the documented HTTP 200 error documents: 501 (an address the caller
//! may not see, or unknown: one answer for both), 600 (invalid request), 601 (a
//! response schema other than Outlook's), 603 (server error).

use super::site::{Base, Security, Service};
use super::target::{self, Lookup, Mailbox};
use super::{Autodiscover, Login, busy, namespace_at, unauthorized};
use crate::ews::auth::{Credentials, credentials};
use crate::ews::xml::{Xml, parse};
use crate::net::http::{HttpRequest, HttpResponse};

pub const NS_RESPONSE: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
pub const NS_OUTLOOK: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
const NS_OUTLOOK_REQUEST: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";
const NS_MOBILE_REQUEST: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006";

const XML: &str = "text/xml; charset=utf-8";

/// The documented POX error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadAddress,
    InvalidRequest,
    ProviderUnavailable,
    ServerError,
}

impl ErrorCode {
    fn code_and_message(self) -> (&'static str, &'static str) {
        match self {
            ErrorCode::BadAddress => ("501", "Bad Address"),
            ErrorCode::InvalidRequest => ("600", "Invalid Request"),
            ErrorCode::ProviderUnavailable => ("601", "Provider is not available"),
            ErrorCode::ServerError => ("603", "Server Error"),
        }
    }
}

/// A POX error document (HTTP 200, as Exchange answers).
pub fn error(code: ErrorCode) -> HttpResponse {
    let (code, message) = code.code_and_message();
    let ms = crate::clock::now_ms_u64();
    let secs = (ms / 1000) % 86_400;
    let time = format!(
        "{:02}:{:02}:{:02}.{:03}0000",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms % 1000
    );
    let id = (ms % 4_294_967_296).to_string();
    let mut x = Xml::new();
    x.open("Autodiscover", &[("xmlns", NS_RESPONSE)])
        .open("Response", &[])
        .open("Error", &[("Time", &time), ("Id", &id)])
        .leaf("ErrorCode", code)
        .leaf("Message", message)
        .empty("DebugData", &[])
        .close("Error")
        .close("Response")
        .close("Autodiscover");
    HttpResponse::new(200, XML, x.finish())
}

/// The address a request asks about.
pub fn parse_request(body: &[u8]) -> Result<String, ErrorCode> {
    let root = parse(body).map_err(|_| ErrorCode::InvalidRequest)?;
    let ns = namespace_at(body, &["Autodiscover"]).unwrap_or_default();
    if root.name != "Autodiscover" || (ns != NS_OUTLOOK_REQUEST && ns != NS_MOBILE_REQUEST) {
        return Err(ErrorCode::InvalidRequest);
    }
    let request = root.child("Request").ok_or(ErrorCode::InvalidRequest)?;
    let email = request
        .child_text("EMailAddress")
        .filter(|e| !e.is_empty())
        .ok_or(ErrorCode::InvalidRequest)?;
    if request.child_text("AcceptableResponseSchema") != Some(NS_OUTLOOK) {
        return Err(ErrorCode::ProviderUnavailable);
    }
    Ok(email.to_string())
}

/// Answers one POX request.
pub async fn answer(ad: &Autodiscover, req: &HttpRequest) -> HttpResponse {
    let Some(Credentials::Basic { login, password }) =
        req.header("authorization").and_then(credentials)
    else {
        return unauthorized();
    };
    let session = match ad.login(req, &login, &password).await {
        Login::Ok(s) => s,
        Login::Refused => return unauthorized(),
        Login::Throttled(d) => return busy(d),
    };
    if req.method != "POST" {
        return error(ErrorCode::InvalidRequest);
    }
    let email = match parse_request(&req.body) {
        Ok(e) => e,
        Err(code) => return error(code),
    };
    let mailbox = match ad.lookup(Some(&session), &email, true) {
        Lookup::Full(m) => m,
        Lookup::Redirect(primary) => return HttpResponse::new(200, XML, redirect(&primary)),
        Lookup::Malformed => return error(ErrorCode::InvalidRequest),
        Lookup::Public | Lookup::InvalidUser | Lookup::InvalidDomain => {
            return error(ErrorCode::BadAddress);
        }
    };
    let Some(me) = target::describe(&ad.directory, &session.org_id, &session.user_id) else {
        return error(ErrorCode::ServerError);
    };
    let base = ad.site.base(req.header("host"));
    let body = settings(&mailbox, &me.primary, &base, &ad.site.imap, &ad.site.smtp);
    HttpResponse::new(200, XML, body)
}

/// `Account/Action redirectAddr` to the primary address.
pub fn redirect(primary: &str) -> Vec<u8> {
    let mut x = Xml::new();
    x.open("Autodiscover", &[("xmlns", NS_RESPONSE)])
        .open("Response", &[("xmlns", NS_OUTLOOK)])
        .open("Account", &[])
        .leaf("AccountType", "email")
        .leaf("Action", "redirectAddr")
        .leaf("MicrosoftOnline", "False")
        .leaf("RedirectAddr", primary)
        .close("Account")
        .close("Response")
        .close("Autodiscover");
    x.finish()
}

/// The settings document for `mailbox`; `login` is the IMAP/SMTP login name
/// (the signed-in user's primary address, also for a mailbox reached through
/// FULL_ACCESS).
pub fn settings(
    mailbox: &Mailbox,
    login: &str,
    base: &Base,
    imap: &[Service],
    smtp: &[Service],
) -> Vec<u8> {
    let ews = base.ews_url();
    let oab = base.oab_url();
    let mut x = Xml::new();
    x.open("Autodiscover", &[("xmlns", NS_RESPONSE)])
        .open("Response", &[("xmlns", NS_OUTLOOK)]);
    x.open("User", &[])
        .leaf("DisplayName", &mailbox.display_name)
        .leaf("LegacyDN", &target::legacy_dn(mailbox))
        .leaf("AutoDiscoverSMTPAddress", &mailbox.primary)
        .leaf("DeploymentId", &target::deployment_id(&mailbox.org_id))
        .close("User");
    x.open("Account", &[])
        .leaf("AccountType", "email")
        .leaf("Action", "settings")
        .leaf("MicrosoftOnline", "False");
    for kind in ["EXCH", "EXPR"] {
        x.open("Protocol", &[])
            .leaf("Type", kind)
            .leaf("Server", &base.host)
            .leaf("ASUrl", &ews)
            .leaf("EwsUrl", &ews)
            .leaf("OOFUrl", &ews)
            .leaf("OABUrl", &oab)
            .leaf("AuthPackage", "Basic")
            .leaf("SSL", "On")
            .close("Protocol");
    }
    x.open("Protocol", &[]).leaf("Type", "WEB");
    for (side, kind) in [("External", "EXPR"), ("Internal", "EXCH")] {
        x.open(side, &[])
            .open("Protocol", &[])
            .leaf("Type", kind)
            .leaf("ASUrl", &ews)
            .close("Protocol")
            .close(side);
    }
    x.close("Protocol");
    for (kind, services, standard_starttls) in [("IMAP", imap, 143), ("SMTP", smtp, 587)] {
        for s in services {
            let implicit = s.security == Security::Implicit;
            if !implicit && s.port != standard_starttls {
                continue;
            }
            x.open("Protocol", &[])
                .leaf("Type", kind)
                .leaf("Server", &base.host)
                .leaf("Port", &s.port.to_string())
                .leaf("DomainRequired", "off")
                .leaf("LoginName", login)
                .leaf("SPA", "off")
                .leaf("SSL", "on")
                .leaf("Encryption", if implicit { "SSL" } else { "TLS" })
                .leaf("AuthRequired", "on");
            if kind == "SMTP" {
                x.leaf("UsePOPAuth", "off").leaf("SMTPLast", "off");
            }
            x.close("Protocol");
        }
    }
    x.close("Account").close("Response").close("Autodiscover");
    x.finish()
}
