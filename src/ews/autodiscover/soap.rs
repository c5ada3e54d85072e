//! SOAP Autodiscover (`POST /autodiscover/autodiscover.svc`): GetUserSettings,
//! as exchangelib, the EWS Managed API and Outlook for Mac send it.
//!
//! Every setting name exchangelib 5.x can request is known ([`SETTINGS`]); those
//! with a meaning here get a value, the rest `SettingIsNotAvailable`, and a name
//! outside the list `InvalidSetting`. The answer names only settings the request
//! asked for, spelled as it spelled them (exchangelib looks every returned name up
//! in its own table and crashes on a stranger).
//!
//! Anonymous requests are answered (exchangelib's probe and its custom-auth
//! scripts send no credentials): for an address of a served domain they learn the
//! URLs, versions, ports and the address they asked about, never a display name
//! or DN, and the same for a mailbox that does not exist (see `target`). Bad
//! requests get `Response/ErrorCode InvalidRequest` with HTTP 200.

use super::site::{Base, Security, Service, Site};
use super::target::{self, Lookup, Mailbox};
use super::{Autodiscover, Login, method_not_allowed, namespace_at, unauthorized};
use crate::ews::auth::{Credentials, credentials};
use crate::ews::xml::{Element, Xml, parse};
use crate::net::http::{HttpRequest, HttpResponse};

pub const NS_AUTODISCOVER: &str = "http://schemas.microsoft.com/exchange/2010/Autodiscover";
const NS_WSA: &str = "http://www.w3.org/2005/08/addressing";
const NS_SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const NS_SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// The EWS schema versions served (exchangelib picks the newest by string order).
pub const SCHEMAS: &str = "Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, Exchange2010_SP2, Exchange2013, Exchange2013_SP1, Exchange2016";
/// The build EWS announces in ServerVersionInfo (15.1.2507.6), Exchange-style.
const CAS_VERSION: &str = "15.01.2507.006";

/// Most users one request may ask about (Exchange's own limit).
const MAX_USERS: usize = 100;
/// Most settings one request may name.
const MAX_SETTINGS: usize = 256;

/// Every setting name exchangelib 5.5/5.6 knows (`UserResponse.SETTINGS_MAP`).
pub const SETTINGS: [&str; 62] = [
    "UserDisplayName",
    "UserDN",
    "UserDeploymentId",
    "InternalMailboxServer",
    "InternalRpcClientServer",
    "InternalMailboxServerDN",
    "InternalEcpUrl",
    "InternalEcpVoicemailUrl",
    "InternalEcpEmailSubscriptionsUrl",
    "InternalEcpTextMessagingUrl",
    "InternalEcpDeliveryReportUrl",
    "InternalEcpRetentionPolicyTagsUrl",
    "InternalEcpPublishingUrl",
    "InternalEwsUrl",
    "InternalOABUrl",
    "InternalUMUrl",
    "InternalWebClientUrls",
    "MailboxDN",
    "PublicFolderServer",
    "ActiveDirectoryServer",
    "ExternalMailboxServer",
    "ExternalMailboxServerRequiresSSL",
    "ExternalMailboxServerAuthenticationMethods",
    "EcpVoicemailUrlFragment",
    "EcpEmailSubscriptionsUrlFragment",
    "EcpTextMessagingUrlFragment",
    "EcpDeliveryReportUrlFragment",
    "EcpRetentionPolicyTagsUrlFragment",
    "EcpPublishingUrlFragment",
    "ExternalEcpUrl",
    "ExternalEcpVoicemailUrl",
    "ExternalEcpEmailSubscriptionsUrl",
    "ExternalEcpTextMessagingUrl",
    "ExternalEcpDeliveryReportUrl",
    "ExternalEcpRetentionPolicyTagsUrl",
    "ExternalEcpPublishingUrl",
    "ExternalEwsUrl",
    "ExternalOABUrl",
    "ExternalUMUrl",
    "ExternalWebClientUrls",
    "CrossOrganizationSharingEnabled",
    "AlternateMailboxes",
    "CasVersion",
    "EwsSupportedSchemas",
    "InternalPop3Connections",
    "ExternalPop3Connections",
    "InternalImap4Connections",
    "ExternalImap4Connections",
    "InternalSmtpConnections",
    "ExternalSmtpConnections",
    "InternalServerExclusiveConnect",
    "ExternalServerExclusiveConnect",
    "ExchangeRpcUrl",
    "ShowGalAsDefaultView",
    "AutoDiscoverSMTPAddress",
    "InteropExternalEwsUrl",
    "ExternalEwsVersion",
    "InteropExternalEwsVersion",
    "MobileMailboxPolicyInterop",
    "GroupingInformation",
    "UserMSOnline",
    "MapiHttpEnabled",
];

/// A parsed GetUserSettings request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The envelope namespace (SOAP 1.1 or 1.2), answered in kind.
    pub soap: &'static str,
    /// The mailboxes asked about, as sent.
    pub users: Vec<String>,
    /// The setting names, as sent, without repeats.
    pub settings: Vec<String>,
}

/// A request refused as a whole: the operation to answer as, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub op: String,
    pub message: &'static str,
}

fn invalid(op: &str, message: &'static str) -> Invalid {
    Invalid {
        op: op.to_string(),
        message,
    }
}

/// Reads a GetUserSettings request.
pub fn parse_request(body: &[u8]) -> Result<Request, Invalid> {
    const OP: &str = "GetUserSettings";
    let root = parse(body).map_err(|_| invalid(OP, "The request is not well-formed XML."))?;
    let soap = match namespace_at(body, &["Envelope"]).as_deref() {
        Some(NS_SOAP11) if root.name == "Envelope" => NS_SOAP11,
        Some(NS_SOAP12) if root.name == "Envelope" => NS_SOAP12,
        _ => return Err(invalid(OP, "The request is not a SOAP envelope.")),
    };
    let message = root
        .child("Body")
        .and_then(|b| b.children.first())
        .ok_or_else(|| invalid(OP, "The SOAP body is empty."))?;
    let path = ["Envelope", "Body", message.name.as_str()];
    if namespace_at(body, &path).as_deref() != Some(NS_AUTODISCOVER) {
        return Err(invalid(
            OP,
            "The request is not in the Autodiscover namespace.",
        ));
    }
    let op = message
        .name
        .strip_suffix("RequestMessage")
        .filter(|n| !n.is_empty() && n.len() <= 64 && n.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or(OP);
    if op != OP {
        return Err(invalid(op, "Only GetUserSettings is served here."));
    }
    let request = message
        .child("Request")
        .ok_or_else(|| invalid(OP, "GetUserSettings needs a Request."))?;
    let users: Vec<String> = request
        .child("Users")
        .map(|u| texts(u, "User", "Mailbox"))
        .unwrap_or_default();
    let named: Vec<&Element> = request
        .child("RequestedSettings")
        .map(|s| s.children_named("Setting").collect())
        .unwrap_or_default();
    // Checked before the (quadratic) removal of repeats.
    if named.len() > MAX_SETTINGS {
        return Err(invalid(OP, "A request names between 1 and 256 settings."));
    }
    let mut settings: Vec<String> = Vec::new();
    for name in named.iter().map(|e| e.text.trim().to_string()) {
        if !settings.iter().any(|s| s.eq_ignore_ascii_case(&name)) {
            settings.push(name);
        }
    }
    if users.is_empty() || users.len() > MAX_USERS {
        return Err(invalid(OP, "A request names between 1 and 100 users."));
    }
    if settings.is_empty()
        || settings.len() > MAX_SETTINGS
        || settings.iter().any(|s| s.is_empty() || s.len() > 128)
    {
        return Err(invalid(OP, "A request names between 1 and 256 settings."));
    }
    Ok(Request {
        soap,
        users,
        settings,
    })
}

/// The trimmed text of `child` in each `parent`-named child of `list`.
fn texts(list: &Element, parent: &str, child: &str) -> Vec<String> {
    list.children_named(parent)
        .map(|u| u.child_text(child).unwrap_or("").to_string())
        .collect()
}

/// Answers one SOAP Autodiscover request.
pub async fn answer(ad: &Autodiscover, req: &HttpRequest) -> HttpResponse {
    if req.method == "GET" || req.method == "HEAD" {
        return HttpResponse::new(
            200,
            "text/html; charset=utf-8",
            "<html><body>mailgate Autodiscover service: POST GetUserSettings requests here.</body></html>\n",
        );
    }
    if req.method != "POST" {
        return method_not_allowed("GET, HEAD, POST");
    }
    let session = match req.header("authorization").and_then(credentials) {
        Some(Credentials::Basic { login, password }) => {
            match ad.login(req, &login, &password).await {
                Login::Ok(s) => Some(s),
                Login::Refused => return unauthorized(),
                Login::Throttled(_) => {
                    return error_response(
                        NS_SOAP11,
                        "GetUserSettings",
                        "ServerBusy",
                        "Too many failed logins; try again later.",
                    );
                }
            }
        }
        // A bearer token or another scheme proves nothing here: answered as anonymous.
        _ => None,
    };
    let request = match parse_request(&req.body) {
        Ok(r) => r,
        Err(e) => return invalid_request(&e.op, e.message),
    };
    let base = ad.site.base(req.header("host"));
    let answers: Vec<UserAnswer> = request
        .users
        .iter()
        .map(
            |address| match ad.lookup(session.as_ref(), address, false) {
                Lookup::Full(m) => UserAnswer::Settings(View::full(&base, &ad.site, m)),
                Lookup::Public | Lookup::Redirect(_) => {
                    UserAnswer::Settings(View::public(&base, &ad.site, address.trim()))
                }
                Lookup::InvalidUser | Lookup::Malformed => UserAnswer::Error(
                    "InvalidUser",
                    format!("No mailbox with the address {}.", address.trim()),
                ),
                Lookup::InvalidDomain => UserAnswer::Error(
                    "InvalidDomain",
                    "No organization here serves this domain.".into(),
                ),
            },
        )
        .collect();
    HttpResponse::new(200, XML, response(&request, &answers))
}

const XML: &str = "text/xml; charset=utf-8";

/// What one user's answer says.
pub enum UserAnswer {
    Settings(View),
    /// A UserResponse ErrorCode and message.
    Error(&'static str, String),
}

/// What the settings of one answer are made of.
pub struct View {
    base: Base,
    imap: Vec<Service>,
    smtp: Vec<Service>,
    /// AutoDiscoverSMTPAddress: the primary address, or the address asked about.
    address: String,
    /// The mailbox, when the caller may see it in full.
    mailbox: Option<Mailbox>,
}

impl View {
    /// Everything about a mailbox the caller may see.
    pub fn full(base: &Base, site: &Site, mailbox: Mailbox) -> View {
        View {
            address: mailbox.primary.clone(),
            mailbox: Some(mailbox),
            ..View::public(base, site, "")
        }
    }

    /// URLs, versions and ports, with the address as asked.
    pub fn public(base: &Base, site: &Site, address: &str) -> View {
        View {
            base: base.clone(),
            imap: site.imap.clone(),
            smtp: site.smtp.clone(),
            address: address.to_string(),
            mailbox: None,
        }
    }
}

/// A setting's value.
enum Value {
    Text(String),
    /// IMAP or SMTP listeners (`ProtocolConnectionCollectionSetting`).
    Connections(Vec<Service>),
}

/// The value of a known setting (canonical spelling), `None` when it has none here.
fn value(name: &str, view: &View) -> Option<Value> {
    let text = |s: &str| Some(Value::Text(s.to_string()));
    let listeners = |l: &[Service]| (!l.is_empty()).then(|| Value::Connections(l.to_vec()));
    let full = view.mailbox.as_ref();
    match name {
        "InternalEwsUrl" | "ExternalEwsUrl" => text(&view.base.ews_url()),
        "EwsSupportedSchemas" => text(SCHEMAS),
        "CasVersion" | "ExternalEwsVersion" => text(CAS_VERSION),
        "AutoDiscoverSMTPAddress" => text(&view.address),
        "ExternalMailboxServer" => text(&view.base.host),
        "ExternalMailboxServerRequiresSSL" => text("True"),
        "ExternalMailboxServerAuthenticationMethods" => text("Basic"),
        "InternalImap4Connections" | "ExternalImap4Connections" => listeners(&view.imap),
        "InternalSmtpConnections" | "ExternalSmtpConnections" => listeners(&view.smtp),
        "MapiHttpEnabled" | "UserMSOnline" => text("False"),
        "UserDisplayName" => full.and_then(|m| text(&m.display_name)),
        "UserDN" => full.and_then(|m| text(&target::legacy_dn(m))),
        "UserDeploymentId" => full.and_then(|m| text(&target::deployment_id(&m.org_id))),
        "MailboxDN" => full.and_then(|_| text(&target::mailbox_dn(&view.base.host))),
        _ => None,
    }
}

fn open_envelope(x: &mut Xml, soap: &str, op: &str) {
    let action = format!("{NS_AUTODISCOVER}/Autodiscover/{op}Response");
    x.open("s:Envelope", &[("xmlns:s", soap), ("xmlns:a", NS_WSA)])
        .open("s:Header", &[])
        .leaf_with("a:Action", &[("s:mustUnderstand", "1")], &action)
        .open(
            "h:ServerVersionInfo",
            &[("xmlns:h", NS_AUTODISCOVER), ("xmlns:i", NS_XSI)],
        )
        .leaf("h:MajorVersion", "15")
        .leaf("h:MinorVersion", "1")
        .leaf("h:MajorBuildNumber", "2507")
        .leaf("h:MinorBuildNumber", "6")
        .leaf("h:Version", "Exchange2016")
        .close("h:ServerVersionInfo")
        .close("s:Header")
        .open("s:Body", &[])
        .open(
            &format!("{op}ResponseMessage"),
            &[("xmlns", NS_AUTODISCOVER), ("xmlns:i", NS_XSI)],
        )
        .open("Response", &[]);
}

fn close_envelope(x: &mut Xml, op: &str) {
    x.close("Response")
        .close(&format!("{op}ResponseMessage"))
        .close("s:Body")
        .close("s:Envelope");
}

/// A whole-request error (`Response/ErrorCode`), HTTP 200.
fn error_response(soap: &str, op: &str, code: &str, message: &str) -> HttpResponse {
    let mut x = Xml::new();
    open_envelope(&mut x, soap, op);
    x.leaf("ErrorCode", code).leaf("ErrorMessage", message);
    close_envelope(&mut x, op);
    HttpResponse::new(200, XML, x.finish())
}

/// `InvalidRequest` for a request that cannot be answered (`op` as the client
/// named it, or GetUserSettings).
pub fn invalid_request(op: &str, message: &str) -> HttpResponse {
    error_response(NS_SOAP11, op, "InvalidRequest", message)
}

/// The GetUserSettings response for `answers` (one per requested user, in order).
pub fn response(request: &Request, answers: &[UserAnswer]) -> Vec<u8> {
    const OP: &str = "GetUserSettings";
    let mut x = Xml::new();
    open_envelope(&mut x, request.soap, OP);
    x.leaf("ErrorCode", "NoError")
        .empty("ErrorMessage", &[])
        .open("UserResponses", &[]);
    for answer in answers {
        x.open("UserResponse", &[]);
        match answer {
            UserAnswer::Error(code, message) => {
                x.leaf("ErrorCode", code)
                    .leaf("ErrorMessage", message)
                    .empty("RedirectTarget", &[("i:nil", "true")])
                    .empty("UserSettingErrors", &[])
                    .empty("UserSettings", &[]);
            }
            UserAnswer::Settings(view) => {
                x.leaf("ErrorCode", "NoError")
                    .leaf("ErrorMessage", "No error.")
                    .empty("RedirectTarget", &[("i:nil", "true")]);
                user_settings(&mut x, &request.settings, view);
            }
        }
        x.close("UserResponse");
    }
    x.close("UserResponses");
    close_envelope(&mut x, OP);
    x.finish()
}

/// `UserSettingErrors` then `UserSettings`, each in request order.
fn user_settings(x: &mut Xml, requested: &[String], view: &View) {
    let answers: Vec<(&str, Result<Value, &str>)> = requested
        .iter()
        .map(|asked| {
            let known = SETTINGS.iter().find(|s| s.eq_ignore_ascii_case(asked));
            let v = match known {
                None => Err("InvalidSetting"),
                Some(name) => value(name, view).ok_or("SettingIsNotAvailable"),
            };
            (asked.as_str(), v)
        })
        .collect();
    x.open("UserSettingErrors", &[]);
    for (name, v) in &answers {
        if let Err(code) = v {
            let message = if *code == "InvalidSetting" {
                "The requested setting is invalid."
            } else {
                "The requested setting is not available for this user."
            };
            x.open("UserSettingError", &[])
                .leaf("ErrorCode", code)
                .leaf("ErrorMessage", message)
                .leaf("SettingName", name)
                .close("UserSettingError");
        }
    }
    x.close("UserSettingErrors").open("UserSettings", &[]);
    for (name, v) in &answers {
        match v {
            Ok(Value::Text(t)) => {
                x.open("UserSetting", &[("i:type", "StringSetting")])
                    .leaf("Name", name)
                    .leaf("Value", t)
                    .close("UserSetting");
            }
            Ok(Value::Connections(list)) => {
                x.open(
                    "UserSetting",
                    &[("i:type", "ProtocolConnectionCollectionSetting")],
                )
                .leaf("Name", name)
                .open("ProtocolConnections", &[]);
                for s in list {
                    let method = match s.security {
                        Security::Implicit => "SSL",
                        Security::StartTls => "TLS",
                    };
                    x.open("ProtocolConnection", &[])
                        .leaf("EncryptionMethod", method)
                        .leaf("Hostname", &view.base.host)
                        .leaf("Port", &s.port.to_string())
                        .close("ProtocolConnection");
                }
                x.close("ProtocolConnections").close("UserSetting");
            }
            Err(_) => {}
        }
    }
    x.close("UserSettings");
}
