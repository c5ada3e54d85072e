//! Outlook's startup probes about add-ins and Microsoft 365 groups, which this
//! server has none of: GetAppMarketplaceUrl (an empty URL: no add-in store),
//! GetAppManifests (no installed add-ins) and GetUnifiedGroupsSettings (nothing
//! to configure). Each answers Success in its schema's shape: an error or an
//! HTTP 500 here makes Outlook ask for the password again (gromox #261).

use super::flat::Flat;
use crate::ews::xml::{Element, Xml};

/// GetAppMarketplaceUrl: the element is present (the EWS Managed API reads it
/// unconditionally) and empty.
pub fn get_app_marketplace_url(xml: &mut Xml) {
    let mut flat = Flat::ok(xml, "GetAppMarketplaceUrl");
    flat.xml().leaf("m:AppMarketplaceUrl", "");
    flat.finish();
}

/// GetAppManifests: no add-ins. A client announcing `ApiVersionSupported` or
/// `SchemaVersionSupported` (Exchange 2013 SP1's form) reads `Apps`; older ones
/// read `Manifests`.
pub fn get_app_manifests(op: &Element, xml: &mut Xml) {
    let mut flat = Flat::ok(xml, "GetAppManifests");
    let sp1 =
        op.child("ApiVersionSupported").is_some() || op.child("SchemaVersionSupported").is_some();
    flat.xml()
        .empty(if sp1 { "m:Apps" } else { "m:Manifests" }, &[]);
    flat.finish();
}

/// GetUnifiedGroupsSettings: a bare Success (no unified groups here).
pub fn get_unified_groups_settings(xml: &mut Xml) {
    Flat::ok(xml, "GetUnifiedGroupsSettings").finish();
}
