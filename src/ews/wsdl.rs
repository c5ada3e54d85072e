//! What `GET` on the EWS paths answers, for clients and tools that probe them
//! (authenticated, as Exchange requires): `/EWS/Exchange.asmx` redirects (302)
//! to `/EWS/Services.wsdl`, which older DavMail versions expect and browsers
//! follow; `/EWS/Services.wsdl` is a WSDL 1.1 document naming every served
//! operation and the service at the public EWS URL, with the operations'
//! elements imported from `messages.xsd` as in Exchange's own.

use super::envelope::NS_MESSAGES;
use super::xml::Xml;
use crate::net::http::HttpResponse;

const NS_WSDL: &str = "http://schemas.xmlsoap.org/wsdl/";
const NS_WSDL_SOAP: &str = "http://schemas.xmlsoap.org/wsdl/soap/";
const NS_XS: &str = "http://www.w3.org/2001/XMLSchema";

/// The WSDL path, as Exchange spells it.
pub const WSDL_PATH: &str = "/EWS/Services.wsdl";

/// The 302 from `/EWS/Exchange.asmx` to the WSDL at `base` (`https://host[:port]`).
pub fn redirect(base: &str) -> HttpResponse {
    let location = format!("{base}{WSDL_PATH}");
    let mut r = HttpResponse::new(
        302,
        "text/html; charset=utf-8",
        format!("<html><body>Object moved to <a href=\"{location}\">here</a>.</body></html>\n"),
    );
    r.headers.push(("location", location));
    r
}

/// The WSDL document: `operations` (each one's request element `tns:{op}` and
/// response `tns:{op}Response`), SOAP 1.1 document/literal, at `ews_url`.
pub fn document(operations: &[&str], ews_url: &str) -> Vec<u8> {
    let mut x = Xml::new();
    x.open(
        "wsdl:definitions",
        &[
            ("xmlns:wsdl", NS_WSDL),
            ("xmlns:soap", NS_WSDL_SOAP),
            ("xmlns:xs", NS_XS),
            ("xmlns:tns", NS_MESSAGES),
            ("targetNamespace", NS_MESSAGES),
        ],
    );
    x.open("wsdl:types", &[]);
    x.open("xs:schema", &[]);
    x.empty(
        "xs:import",
        &[
            ("namespace", NS_MESSAGES),
            ("schemaLocation", "messages.xsd"),
        ],
    );
    x.close("xs:schema");
    x.close("wsdl:types");
    for op in operations {
        x.open("wsdl:message", &[("name", &format!("{op}SoapIn"))]);
        x.empty(
            "wsdl:part",
            &[("name", "request"), ("element", &format!("tns:{op}"))],
        );
        x.close("wsdl:message");
        x.open("wsdl:message", &[("name", &format!("{op}SoapOut"))]);
        x.empty(
            "wsdl:part",
            &[
                ("name", &format!("{op}Result")),
                ("element", &format!("tns:{op}Response")),
            ],
        );
        x.close("wsdl:message");
    }
    x.open("wsdl:portType", &[("name", "ExchangeServicePortType")]);
    for op in operations {
        x.open("wsdl:operation", &[("name", op)]);
        x.empty("wsdl:input", &[("message", &format!("tns:{op}SoapIn"))]);
        x.empty("wsdl:output", &[("message", &format!("tns:{op}SoapOut"))]);
        x.close("wsdl:operation");
    }
    x.close("wsdl:portType");
    x.open(
        "wsdl:binding",
        &[
            ("name", "ExchangeServiceBinding"),
            ("type", "tns:ExchangeServicePortType"),
        ],
    );
    x.empty(
        "soap:binding",
        &[
            ("style", "document"),
            ("transport", "http://schemas.xmlsoap.org/soap/http"),
        ],
    );
    for op in operations {
        x.open("wsdl:operation", &[("name", op)]);
        x.empty(
            "soap:operation",
            &[("soapAction", &format!("{NS_MESSAGES}/{op}"))],
        );
        for dir in ["wsdl:input", "wsdl:output"] {
            x.open(dir, &[]);
            x.empty("soap:body", &[("use", "literal")]);
            x.close(dir);
        }
        x.close("wsdl:operation");
    }
    x.close("wsdl:binding");
    x.open("wsdl:service", &[("name", "ExchangeServices")]);
    x.open(
        "wsdl:port",
        &[
            ("name", "ExchangeServicePort"),
            ("binding", "tns:ExchangeServiceBinding"),
        ],
    );
    x.empty("soap:address", &[("location", ews_url)]);
    x.close("wsdl:port");
    x.close("wsdl:service");
    x.close("wsdl:definitions");
    x.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::xml::parse;

    #[test]
    fn names_each_operation_and_the_service_address() {
        let doc = document(
            &["GetFolder", "FindItem"],
            "https://mail.acme.test/EWS/Exchange.asmx",
        );
        let root = parse(&doc).unwrap();
        assert_eq!(root.name, "definitions");
        assert_eq!(root.attr("targetNamespace"), Some(NS_MESSAGES));
        let names = |parent: &str| -> Vec<String> {
            root.child(parent)
                .unwrap()
                .children_named("operation")
                .map(|o| o.attr("name").unwrap().to_string())
                .collect()
        };
        assert_eq!(names("portType"), ["GetFolder", "FindItem"]);
        assert_eq!(names("binding"), ["GetFolder", "FindItem"]);
        let messages: Vec<&str> = root
            .children_named("message")
            .map(|m| m.attr("name").unwrap())
            .collect();
        assert_eq!(
            messages,
            [
                "GetFolderSoapIn",
                "GetFolderSoapOut",
                "FindItemSoapIn",
                "FindItemSoapOut"
            ]
        );
        let address = root
            .path(&["service", "port", "address"])
            .unwrap()
            .attr("location");
        assert_eq!(address, Some("https://mail.acme.test/EWS/Exchange.asmx"));
    }

    #[test]
    fn a_hostile_url_stays_an_attribute_value() {
        let doc = document(&["GetFolder"], "https://x/\"><evil/>");
        let root = parse(&doc).unwrap();
        let address = root.path(&["service", "port", "address"]).unwrap();
        assert_eq!(address.attr("location"), Some("https://x/\"><evil/>"));
        assert!(address.children.is_empty());
    }

    #[test]
    fn the_redirect_points_at_the_wsdl() {
        let r = redirect("https://mail.acme.test:8443");
        assert_eq!(r.status, 302);
        let location = r.headers.iter().find(|(k, _)| *k == "location").unwrap();
        assert_eq!(location.1, "https://mail.acme.test:8443/EWS/Services.wsdl");
    }
}
