//! Autodiscover v2 (JSON): `GET /autodiscover/autodiscover.json/v1.0/{address}?Protocol=Ews`
//! and Outlook's `GET /autodiscover/autodiscover.json?Email={address}&Protocol=AutodiscoverV1`,
//! path and parameter names in any letter case. Anonymous, as Outlook sends it:
//! the answer is a URL, the same for every address of a served domain.
//!
//! Answers `{"Protocol":"Ews","Url":".../EWS/Exchange.asmx"}` and
//! `{"Protocol":"AutodiscoverV1","Url":".../autodiscover/autodiscover.xml"}`;
//! errors are HTTP 200 `{"ErrorCode","ErrorMessage"}` documents with Exchange's
//! codes (`MandatoryParameterMissing`, `MissingProtocol`, `ProtocolNotSupported`
//! for ActiveSync and the rest, which mailgate does not serve), plus
//! `InvalidDomain` for a domain no organization here serves.

use super::target::domain_of;
use super::{Autodiscover, method_not_allowed, percent_decode, query_param};
use crate::net::http::{HttpRequest, HttpResponse};

const JSON: &str = "application/json; charset=utf-8";

/// The protocols answered, in their canonical spelling.
const SUPPORTED: [&str; 2] = ["AutodiscoverV1", "Ews"];

fn document(value: serde_json::Value) -> HttpResponse {
    HttpResponse::new(200, JSON, value.to_string())
}

fn error(code: &str, message: &str) -> HttpResponse {
    document(serde_json::json!({ "ErrorCode": code, "ErrorMessage": message }))
}

/// The address a request names: the path segment after `v1.0/`, or `Email=`.
/// `Err(())` for a path this endpoint does not serve.
fn address(path: &str, query: &str) -> Result<Option<String>, ()> {
    const ROOT: &str = "/autodiscover/autodiscover.json";
    let rest = match path.get(..ROOT.len()) {
        Some(p) if p.eq_ignore_ascii_case(ROOT) => &path[ROOT.len()..],
        _ => return Err(()),
    };
    if rest.is_empty() || rest == "/" {
        return Ok(query_param(query, "Email").filter(|e| !e.is_empty()));
    }
    let Some(tail) = rest
        .get(..6)
        .filter(|v| v.eq_ignore_ascii_case("/v1.0/"))
        .map(|_| &rest[6..])
    else {
        return Err(());
    };
    Ok(percent_decode(tail.trim_end_matches('/')).filter(|a| !a.is_empty() && !a.contains('/')))
}

/// Answers one v2 request.
pub fn answer(ad: &Autodiscover, req: &HttpRequest) -> HttpResponse {
    if req.method != "GET" && req.method != "HEAD" {
        return method_not_allowed("GET, HEAD");
    }
    let address = match address(&req.path, &req.query) {
        Ok(a) => a,
        Err(()) => return HttpResponse::new(404, "text/plain; charset=utf-8", "not found\n"),
    };
    let Some(address) = address else {
        return error(
            "MandatoryParameterMissing",
            "The get request sent does not match the valid format.",
        );
    };
    let protocol = match query_param(&req.query, "Protocol").filter(|p| !p.is_empty()) {
        None => {
            return error(
                "MissingProtocol",
                "A valid value must be provided for the query parameter 'Protocol'.",
            );
        }
        Some(p) => p,
    };
    let Some(canonical) = SUPPORTED.iter().find(|s| s.eq_ignore_ascii_case(&protocol)) else {
        let shown: String = protocol.chars().take(64).collect();
        return error(
            "ProtocolNotSupported",
            &format!(
                "Protocol: The protocol '{shown}' is not supported. Supported protocols are: '{}'.",
                SUPPORTED.join(",")
            ),
        );
    };
    let served = domain_of(address.trim()).is_some_and(|d| ad.directory.domain_owner(d).is_some());
    if !served {
        return error("InvalidDomain", "No organization here serves this domain.");
    }
    let base = ad.site.base(req.header("host"));
    let url = if *canonical == "Ews" {
        base.ews_url()
    } else {
        base.pox_url()
    };
    document(serde_json::json!({ "Protocol": canonical, "Url": url }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_come_from_the_path_or_the_email_parameter() {
        let a = |p: &str, q: &str| address(p, q);
        assert_eq!(
            a(
                "/autodiscover/autodiscover.json/v1.0/alice%40acme.test",
                "Protocol=Ews"
            ),
            Ok(Some("alice@acme.test".into()))
        );
        assert_eq!(
            a("/AutoDiscover/AutoDiscover.JSON/V1.0/alice@acme.test/", ""),
            Ok(Some("alice@acme.test".into()))
        );
        assert_eq!(
            a(
                "/autodiscover/autodiscover.json",
                "Email=alice%40acme.test&Protocol=Ews"
            ),
            Ok(Some("alice@acme.test".into()))
        );
        assert_eq!(
            a("/autodiscover/autodiscover.json", "Protocol=Ews"),
            Ok(None)
        );
        assert_eq!(a("/autodiscover/autodiscover.json/v1.0/", ""), Ok(None));
        assert_eq!(
            a("/autodiscover/autodiscover.json/v1.0/a%2Fb/c", ""),
            Ok(None)
        );
        assert_eq!(a("/autodiscover/autodiscover.json/v1.0/%zz", ""), Ok(None));
        assert_eq!(a("/autodiscover/autodiscover.jsonx", ""), Err(()));
        assert_eq!(a("/autodiscover/autodiscover.json/v2.0/a@b", ""), Err(()));
        assert_eq!(a("/autodiscover/autodiscover.json/v1", ""), Err(()));
    }
}
