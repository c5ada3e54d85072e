//! The first requests DavMail and Evolution send, byte for byte as their code
//! writes them (DavMail `EWSMethod.generateSoapEnvelope`: `soap:` prefix, no
//! header at all on the very first request; Evolution `e-soap-request.c`:
//! `SOAP-ENV:` prefix, `types:RequestServerVersion`, the operation in `messages:`
//! with the types namespace as default), each answered well-formed and
//! successful, as these clients read the answer.

use super::*;

const NS: &str = r#"xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages""#;

/// DavMail's envelope: a header only once it knows the server version.
fn davmail(version: Option<&str>, body: &str) -> String {
    let header = version
        .map(|v| format!(r#"<soap:Header><t:RequestServerVersion Version="{v}"/></soap:Header>"#))
        .unwrap_or_default();
    format!("<soap:Envelope {NS}>{header}<soap:Body>{body}</soap:Body></soap:Envelope>")
}

/// Sends a raw request as alice; asserts HTTP 200 and DavMail's exact content
/// type check, returns the parsed response.
async fn send(f: &Fixture, body: &str) -> Element {
    let (status, headers, text) = f.raw(Some(&basic("alice@acme.test", PASSWORD)), body).await;
    assert_eq!(status, 200, "{text}");
    let content_type = headers.iter().find(|(k, _)| *k == "content-type").unwrap();
    assert_eq!(
        content_type.1, "text/xml; charset=utf-8",
        "DavMail compares it exactly"
    );
    parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn success<'e>(root: &'e Element, op: &str) -> &'e Element {
    let m = messages(root, op)[0];
    assert_eq!(m.attr("ResponseClass"), Some("Success"), "{root:?}");
    assert_eq!(m.child_text("ResponseCode"), Some("NoError"));
    m
}

#[tokio::test]
async fn davmail_first_requests_learn_the_version_and_the_address() {
    let f = Fixture::new().await;
    // checkEndPointUrl: GetFolder root, IdOnly, no RequestServerVersion.
    let get_root = r#"<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="root"/></m:FolderIds></m:GetFolder>"#;
    let root = send(&f, &davmail(None, get_root)).await;
    let info = root.path(&["Header", "ServerVersionInfo"]).unwrap();
    // DavMail maps 15.x to Exchange2013_SP1 from these two attributes.
    assert_eq!(info.attr("MajorVersion"), Some("15"));
    assert_eq!(info.attr("MinorVersion"), Some("1"));
    let folder_id = success(&root, "GetFolder")
        .path(&["Folders", "Folder", "FolderId"])
        .unwrap()
        .attr("Id")
        .unwrap()
        .to_string();

    // buildSessionInfo: ConvertId of the root folder id, with DavMail's made-up
    // mailbox; the answer's Mailbox becomes the user's address.
    let convert = format!(
        r#"<m:ConvertId DestinationFormat="EwsId"><m:SourceIds><t:AlternateId  Format="EwsId" Id="{folder_id}" Mailbox="blah@blah.com"/></m:SourceIds></m:ConvertId>"#
    );
    let root = send(&f, &davmail(Some("Exchange2013_SP1"), &convert)).await;
    let alt = success(&root, "ConvertId").child("AlternateId").unwrap();
    assert_eq!(alt.attr("Mailbox"), Some("alice@acme.test"));
    assert_eq!(alt.attr("Id"), Some(folder_id.as_str()));

    // Then the well-known folders, by distinguished id.
    for name in [
        "inbox",
        "sentitems",
        "drafts",
        "deleteditems",
        "junkemail",
        "outbox",
    ] {
        let get = format!(
            r#"<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="folder:DisplayName"/></t:AdditionalProperties></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="{name}"/></m:FolderIds></m:GetFolder>"#
        );
        let root = send(&f, &davmail(Some("Exchange2013_SP1"), &get)).await;
        let folder = success(&root, "GetFolder").child("Folders").unwrap();
        assert!(folder.children[0].child("FolderId").is_some(), "{name}");
    }
}

#[tokio::test]
async fn davmail_convert_id_of_another_users_or_an_unknown_id_reveals_nothing() {
    let f = Fixture::new().await;
    let bogus = crate::ews::ids::EwsId::Folder("nosuchfolder".into()).encode();
    let convert = format!(
        r#"<m:ConvertId DestinationFormat="EwsId"><m:SourceIds><t:AlternateId Format="EwsId" Id="{bogus}" Mailbox="blah@blah.com"/><t:AlternateId Format="EntryId" Id="AAAA" Mailbox="blah@blah.com"/></m:SourceIds></m:ConvertId>"#
    );
    let root = send(&f, &davmail(Some("Exchange2013_SP1"), &convert)).await;
    assert_eq!(
        codes(&root, "ConvertId"),
        ["ErrorItemNotFound", "ErrorInvalidIdMalformed"]
    );
}

/// Evolution's envelope (`e_ews_request_new_with_header`).
fn evolution(version: &str, op: &str, inner: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><SOAP-ENV:Header><types:RequestServerVersion xmlns:types="http://schemas.microsoft.com/exchange/services/2006/types" Version="{version}"/></SOAP-ENV:Header><SOAP-ENV:Body xmlns:messages="http://schemas.microsoft.com/exchange/services/2006/messages"><messages:{op} xmlns="http://schemas.microsoft.com/exchange/services/2006/types">{inner}</messages:{op}></SOAP-ENV:Body></SOAP-ENV:Envelope>
"#
    )
}

#[tokio::test]
async fn evolution_first_requests_check_the_login_then_sync_the_hierarchy() {
    let f = Fixture::new().await;
    // try_credentials: GetFolder "Default" of inbox, version unknown yet, so
    // Exchange2007_SP1.
    let body = evolution(
        "Exchange2007_SP1",
        "GetFolder",
        r#"<messages:FolderShape><BaseShape>Default</BaseShape></messages:FolderShape><messages:FolderIds><DistinguishedFolderId Id="inbox"/></messages:FolderIds>"#,
    );
    let root = send(&f, &body).await;
    // Evolution reads only Version: anything past 2010 is "future" (streaming on).
    let info = root.path(&["Header", "ServerVersionInfo"]).unwrap();
    assert_eq!(info.attr("Version"), Some("Exchange2016"));
    let folder = success(&root, "GetFolder")
        .path(&["Folders", "Folder"])
        .unwrap();
    assert_eq!(folder.child_text("DisplayName"), Some("Inbox"));

    // Then the folder hierarchy, AllProperties, now as Exchange2013.
    let body = evolution(
        "Exchange2013",
        "SyncFolderHierarchy",
        r#"<messages:FolderShape><BaseShape>AllProperties</BaseShape></messages:FolderShape>"#,
    );
    let root = send(&f, &body).await;
    let m = success(&root, "SyncFolderHierarchy");
    assert!(!m.child_text("SyncState").unwrap_or("").is_empty());
    assert_eq!(m.child_text("IncludesLastFolderInRange"), Some("true"));
    let created = m.child("Changes").unwrap().children.len();
    assert!(created >= 6, "the default folders: {created}");

    // The address book asks for photos (from Exchange2013): no photo, HTTP 200.
    let body = evolution(
        "Exchange2013",
        "GetUserPhoto",
        "<messages:Email>bob@acme.test</messages:Email><messages:SizeRequested>HR48x48</messages:SizeRequested>",
    );
    let root = send(&f, &body).await;
    let r = root.path(&["Body", "GetUserPhotoResponse"]).unwrap();
    assert_eq!(r.child_text("ResponseCode"), Some("ErrorItemNotFound"));
}
