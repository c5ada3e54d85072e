//! What clients probe besides mail: user photos (SOAP and REST), Outlook's add-in
//! and group questions, and `GET` on the EWS paths.

use super::*;

fn flat<'e>(root: &'e Element, op: &str) -> &'e Element {
    root.path(&["Body", &format!("{op}Response")])
        .unwrap_or_else(|| panic!("no {op}Response in {root:?}"))
}

#[tokio::test]
async fn get_user_photo_says_there_is_none() {
    let f = Fixture::new().await;
    let ask = |email: &str, size: &str| {
        format!(
            "<m:GetUserPhoto><m:Email>{email}</m:Email><m:SizeRequested>{size}</m:SizeRequested></m:GetUserPhoto>"
        )
    };
    for email in ["bob@acme.test", "stranger@example.org"] {
        let root = f.call(&ask(email, "HR240x240")).await;
        let r = flat(&root, "GetUserPhoto");
        assert_eq!(r.attr("ResponseClass"), Some("Error"));
        assert_eq!(r.child_text("ResponseCode"), Some("ErrorItemNotFound"));
        assert_eq!(r.child_text("HasChanged"), Some("false"));
        assert!(r.child("PictureData").is_none(), "no empty picture");
    }
    for bad in [ask("", "HR48x48"), ask("bob@acme.test", "HR1x1")] {
        let root = f.call(&bad).await;
        let r = flat(&root, "GetUserPhoto");
        assert_eq!(r.child_text("ResponseCode"), Some("ErrorSchemaValidation"));
        assert_eq!(r.child_text("HasChanged"), Some("false"));
    }
}

#[tokio::test]
async fn the_rest_photo_form_is_404_and_needs_a_login() {
    let f = Fixture::new().await;
    let alice = basic("alice@acme.test", PASSWORD);
    let path = "/ews/exchange.asmx/s/GetUserPhoto";
    let r = f
        .get(
            Some(&alice),
            path,
            "email=bob@acme.test&size=HR96x96",
            "localhost",
        )
        .await;
    assert_eq!(r.status, 404);
    let r = f
        .get(Some(&alice), path, "email=bob@acme.test", "localhost")
        .await;
    assert_eq!(r.status, 404, "the size is optional");
    for bad in ["size=HR96x96", "email=bob@acme.test&size=HUGE", ""] {
        let r = f.get(Some(&alice), path, bad, "localhost").await;
        assert_eq!(r.status, 400, "{bad}");
    }
    let r = f.get(None, path, "email=bob@acme.test", "localhost").await;
    assert_eq!(r.status, 401);
    let r = f
        .get(
            Some(&basic("alice@acme.test", "wrong")),
            path,
            "email=bob@acme.test",
            "localhost",
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn outlook_add_in_and_group_probes_succeed_empty() {
    let f = Fixture::new().await;
    let root = f.call("<m:GetAppMarketplaceUrl/>").await;
    let r = flat(&root, "GetAppMarketplaceUrl");
    assert_eq!(r.attr("ResponseClass"), Some("Success"));
    let names: Vec<&str> = r.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["ResponseCode", "AppMarketplaceUrl"]);
    assert_eq!(r.child_text("AppMarketplaceUrl"), Some(""));

    let root = f
        .call("<m:GetAppManifests><m:ApiVersionSupported>1.1</m:ApiVersionSupported><m:SchemaVersionSupported>1.1</m:SchemaVersionSupported></m:GetAppManifests>")
        .await;
    let r = flat(&root, "GetAppManifests");
    assert_eq!(r.child_text("ResponseCode"), Some("NoError"));
    assert!(r.child("Apps").unwrap().children.is_empty());
    assert!(r.child("Manifests").is_none());
    let root = f.call("<m:GetAppManifests/>").await;
    let r = flat(&root, "GetAppManifests");
    assert!(r.child("Manifests").unwrap().children.is_empty());
    assert!(r.child("Apps").is_none());

    let root = f.call("<m:GetUnifiedGroupsSettings/>").await;
    let r = flat(&root, "GetUnifiedGroupsSettings");
    assert_eq!(r.attr("ResponseClass"), Some("Success"));
    assert_eq!(r.child_text("ResponseCode"), Some("NoError"));
}

#[test]
fn the_new_operations_are_counted_as_served() {
    let ops = "GetServiceConfiguration GetMailTips GetUserPhoto GetAppMarketplaceUrl GetAppManifests GetUnifiedGroupsSettings";
    for op in ops.split(' ') {
        assert_eq!(crate::ews::ops::served(op), op);
    }
}

#[tokio::test]
async fn get_on_the_endpoint_redirects_to_the_wsdl() {
    let f = Fixture::new().await;
    let alice = basic("alice@acme.test", PASSWORD);
    let r = f
        .get(Some(&alice), "/EWS/Exchange.asmx", "", "localhost:8443")
        .await;
    assert_eq!(r.status, 302);
    let location = r.headers.iter().find(|(k, _)| *k == "location").unwrap();
    assert_eq!(location.1, "https://localhost:8443/EWS/Services.wsdl");

    let r = f
        .get(Some(&alice), "/ews/services.wsdl", "", "localhost:8443")
        .await;
    assert_eq!(r.status, 200);
    let doc = parse(r.body.bytes()).unwrap();
    assert_eq!(doc.name, "definitions");
    let address = doc.path(&["service", "port", "address"]).unwrap();
    assert_eq!(
        address.attr("location"),
        Some("https://localhost:8443/EWS/Exchange.asmx")
    );
    let ops: Vec<&str> = doc
        .child("portType")
        .unwrap()
        .children
        .iter()
        .map(|o| o.attr("name").unwrap())
        .collect();
    assert_eq!(ops, crate::ews::ops::SERVED);

    // A Host header that is not a host name is not echoed: the configured name is.
    let r = f
        .get(Some(&alice), "/EWS/Services.wsdl", "", "evil\"/><x")
        .await;
    let doc = parse(r.body.bytes()).unwrap();
    let address = doc.path(&["service", "port", "address"]).unwrap();
    assert_eq!(
        address.attr("location"),
        Some("https://mail.acme.test/EWS/Exchange.asmx")
    );

    // As Exchange: nothing without a login.
    for path in ["/EWS/Exchange.asmx", "/EWS/Services.wsdl"] {
        let r = f.get(None, path, "", "localhost").await;
        assert_eq!(r.status, 401, "{path}");
        assert!(r.headers.iter().any(|(k, _)| *k == "www-authenticate"));
    }
    let r = f
        .get(Some(&alice), "/EWS/Exchange.asmx/s/Other", "", "localhost")
        .await;
    assert_eq!(r.status, 404);
}
