//! The SOAP envelope of EWS: what a request's header asks for (schema version,
//! impersonation) and the envelope every response goes out in.
//!
//! Every response, success, error or fault, carries `ServerVersionInfo` in
//! `soap:Header`: Thunderbird's parser panics without it and exchangelib adopts the
//! announced version for its next requests. We announce Exchange 2016 (15.1),
//! which exchangelib parses, Thunderbird maps to its 2013_SP1 feature set (so
//! MarkAllItemsAsRead and MarkAsJunk are used) and Evolution treats as "future".

use super::codes::ResponseCode;
use super::xml::{Element, Xml};

pub const NS_SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const NS_TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
pub const NS_MESSAGES: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
pub const NS_ERRORS: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";

/// The schema versions clients send in `RequestServerVersion`, all served alike.
const KNOWN_VERSIONS: &[&str] = &[
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2009",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2015_SP1",
    "Exchange2016",
];

/// Whether a `RequestServerVersion` value is served: the documented names, the
/// later ones exchangelib sends, and Exchange Online's `V20xx_MM_DD` names.
pub fn version_accepted(version: &str) -> bool {
    if KNOWN_VERSIONS.contains(&version) {
        return true;
    }
    let Some(rest) = version.strip_prefix('V') else {
        return false;
    };
    let mut parts = rest.split('_');
    let year = parts.next().and_then(|y| y.parse::<u32>().ok());
    year.is_some_and(|y| (2015..=2030).contains(&y))
        && parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// How the request names the mailbox it acts on (`ExchangeImpersonation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectingSid {
    /// PrimarySmtpAddress or SmtpAddress.
    Smtp(String),
    /// A user principal name; ours are email addresses.
    PrincipalName(String),
    /// A Windows SID: there are none here.
    Sid(String),
}

/// A parsed request: its header's demands and the operation element.
#[derive(Debug, Clone)]
pub struct Request {
    pub impersonation: Option<ConnectingSid>,
    /// The first child of `soap:Body`: its local name is the operation.
    pub op: Element,
}

/// A request the envelope already refuses, answered as a SOAP fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: ResponseCode,
    pub message: String,
}

impl Fault {
    pub fn new(code: ResponseCode, message: impl Into<String>) -> Fault {
        Fault {
            code,
            message: message.into(),
        }
    }
}

/// Reads the envelope of a parsed document.
pub fn parse_request(root: Element) -> Result<Request, Fault> {
    let schema = |m: &str| Fault::new(ResponseCode::ErrorSchemaValidation, m);
    if root.name != "Envelope" {
        return Err(schema("the root element is not a SOAP Envelope"));
    }
    let mut impersonation = None;
    if let Some(header) = root.child("Header") {
        if let Some(v) = header.child("RequestServerVersion") {
            let version = v.attr("Version").unwrap_or("");
            if !version_accepted(version) {
                return Err(Fault::new(
                    ResponseCode::ErrorInvalidServerVersion,
                    "The specified server version is invalid.",
                ));
            }
        }
        if let Some(imp) = header.child("ExchangeImpersonation") {
            impersonation = Some(connecting_sid(imp)?);
        }
    }
    let mut root = root;
    let body_at = root
        .children
        .iter()
        .position(|c| c.name == "Body")
        .ok_or_else(|| schema("the SOAP Envelope has no Body"))?;
    let body = root.children.swap_remove(body_at);
    let op = body
        .children
        .into_iter()
        .next()
        .ok_or_else(|| schema("the SOAP Body is empty"))?;
    Ok(Request { impersonation, op })
}

fn connecting_sid(imp: &Element) -> Result<ConnectingSid, Fault> {
    let bad = || {
        Fault::new(
            ResponseCode::ErrorInvalidExchangeImpersonationHeaderData,
            "ExchangeImpersonation needs ConnectingSID with one of PrimarySmtpAddress, SmtpAddress, PrincipalName or SID",
        )
    };
    let sid = imp.child("ConnectingSID").ok_or_else(bad)?;
    let value = |name| {
        sid.child_text(name)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    if let Some(a) = value("PrimarySmtpAddress").or_else(|| value("SmtpAddress")) {
        Ok(ConnectingSid::Smtp(a))
    } else if let Some(p) = value("PrincipalName") {
        Ok(ConnectingSid::PrincipalName(p))
    } else if let Some(s) = value("SID") {
        Ok(ConnectingSid::Sid(s))
    } else {
        Err(bad())
    }
}

/// Opens the envelope and writes the header; the caller writes the body content
/// and calls [`close`].
pub fn open(xml: &mut Xml) {
    xml.open(
        "s:Envelope",
        &[
            ("xmlns:s", NS_SOAP),
            ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
            ("xmlns:xsd", "http://www.w3.org/2001/XMLSchema"),
        ],
    );
    xml.open("s:Header", &[]);
    xml.empty(
        "h:ServerVersionInfo",
        &[
            ("MajorVersion", "15"),
            ("MinorVersion", "1"),
            ("MajorBuildNumber", "2507"),
            ("MinorBuildNumber", "6"),
            ("Version", "Exchange2016"),
            ("xmlns:h", NS_TYPES),
            ("xmlns", NS_TYPES),
        ],
    );
    xml.close("s:Header");
    xml.open("s:Body", &[]);
}

/// Closes what [`open`] opened.
pub fn close(xml: &mut Xml) {
    xml.close("s:Body").close("s:Envelope");
}

/// A whole fault document (`s:Fault` with the EWS code in `detail`).
pub fn fault(fault: &Fault) -> Vec<u8> {
    fault_document(fault, None)
}

/// An `ErrorServerBusy` fault telling the client how long to wait.
pub fn fault_with_backoff(fault: &Fault, back_off_ms: &str) -> Vec<u8> {
    fault_document(fault, Some(back_off_ms))
}

fn fault_document(fault: &Fault, back_off_ms: Option<&str>) -> Vec<u8> {
    let mut xml = Xml::new();
    open(&mut xml);
    let client = matches!(
        fault.code,
        ResponseCode::ErrorSchemaValidation | ResponseCode::ErrorInvalidServerVersion
    );
    xml.open("s:Fault", &[]);
    xml.leaf("faultcode", if client { "s:Client" } else { "s:Server" });
    xml.leaf("faultstring", &fault.message);
    xml.open("detail", &[]);
    xml.leaf_with(
        "e:ResponseCode",
        &[("xmlns:e", NS_ERRORS)],
        fault.code.as_str(),
    );
    xml.leaf_with("e:Message", &[("xmlns:e", NS_ERRORS)], &fault.message);
    if let Some(ms) = back_off_ms {
        xml.open("e:MessageXml", &[("xmlns:e", NS_ERRORS)]);
        xml.leaf_with(
            "t:Value",
            &[("Name", "BackOffMilliseconds"), ("xmlns:t", NS_TYPES)],
            ms,
        );
        xml.close("e:MessageXml");
    }
    xml.close("detail");
    xml.close("s:Fault");
    close(&mut xml);
    xml.finish()
}
