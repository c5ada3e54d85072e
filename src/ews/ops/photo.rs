//! User photos: none are stored, so both forms answer "no photo" as Exchange
//! documents it. SOAP GetUserPhoto (DavMail, Evolution from Exchange 2013) gets
//! ResponseClass Error with `ErrorItemNotFound` and `HasChanged` false, and no
//! `PictureData`, so no client mistakes an empty element for an empty picture;
//! the REST form `GET /EWS/Exchange.asmx/s/GetUserPhoto?email=…&size=…` (Outlook,
//! the EWS Managed API) gets 404, Exchange's "no image for this account".

use super::flat::Flat;
use crate::ews::codes::ResponseCode;
use crate::ews::xml::{Element, Xml};
use crate::net::http::HttpResponse;

/// The `SizeRequested` values the schema allows (`UserPhotoSizeType`).
const SIZES: &[&str] = &[
    "HR48x48",
    "HR64x64",
    "HR96x96",
    "HR120x120",
    "HR240x240",
    "HR360x360",
    "HR432x432",
    "HR504x504",
    "HR648x648",
];

/// Why a photo request is malformed, if it is: it must name an address and one
/// of the documented sizes.
pub fn malformed(email: Option<&str>, size: Option<&str>) -> Option<&'static str> {
    if email.is_none_or(|e| e.trim().is_empty()) {
        return Some("GetUserPhoto needs an Email.");
    }
    if !size.is_some_and(|s| SIZES.contains(&s.trim())) {
        return Some("SizeRequested must be one of HR48x48 … HR648x648.");
    }
    None
}

/// SOAP GetUserPhoto.
pub fn get_user_photo(op: &Element, xml: &mut Xml) {
    const OP: &str = "GetUserPhoto";
    let (code, text) = match malformed(op.child_text("Email"), op.child_text("SizeRequested")) {
        Some(why) => (ResponseCode::ErrorSchemaValidation, why),
        None => (
            ResponseCode::ErrorItemNotFound,
            "No photo is stored for this address.",
        ),
    };
    let mut flat = Flat::error(xml, OP, code, Some(text));
    flat.xml().leaf("m:HasChanged", "false");
    flat.finish();
}

/// REST GetUserPhoto: 404 (no photo), or 400 for a request without an address
/// or with an unknown size (a missing size means the smallest).
pub fn rest(query: &str) -> HttpResponse {
    let param = |name: &str| {
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            k.eq_ignore_ascii_case(name).then_some(v)
        })
    };
    match malformed(param("email"), param("size").or(Some("HR48x48"))) {
        Some(why) => HttpResponse::new(400, "text/plain; charset=utf-8", format!("{why}\n")),
        None => HttpResponse::new(
            404,
            "text/plain; charset=utf-8",
            "No image is available for the specified email account.\n",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_request_needs_an_address_and_a_documented_size() {
        assert_eq!(malformed(Some("a@b.test"), Some("HR648x648")), None);
        assert_eq!(malformed(Some("a@b.test"), Some(" HR48x48 ")), None);
        for (email, size) in [
            (None, Some("HR48x48")),
            (Some("  "), Some("HR48x48")),
            (Some("a@b.test"), None),
            (Some("a@b.test"), Some("hr48x48")),
            (Some("a@b.test"), Some("HR1000x1000")),
        ] {
            assert!(malformed(email, size).is_some(), "{email:?} {size:?}");
        }
    }

    #[test]
    fn rest_answers_404_or_400() {
        assert_eq!(rest("email=a@b.test&size=HR96x96").status, 404);
        assert_eq!(rest("EMAIL=a@b.test").status, 404);
        assert_eq!(rest("size=HR96x96").status, 400);
        assert_eq!(rest("email=a@b.test&size=big").status, 400);
        assert_eq!(rest("").status, 400);
    }
}
