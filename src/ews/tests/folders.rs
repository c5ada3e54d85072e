//! Folder operations as exchangelib and Thunderbird drive them.

use super::*;

fn folder_ids(root: &Element, op: &str) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(e: &Element, out: &mut Vec<String>) {
        if e.name == "FolderId" {
            out.push(e.attr("Id").unwrap_or("").to_string());
        }
        for c in &e.children {
            walk(c, out);
        }
    }
    walk(
        root.path(&["Body", &format!("{op}Response")]).unwrap(),
        &mut out,
    );
    out
}

#[tokio::test]
async fn well_known_folders_in_one_batch_with_not_found_in_place() {
    let f = Fixture::new().await;
    let names = [
        "msgfolderroot",
        "inbox",
        "deleteditems",
        "drafts",
        "outbox",
        "sentitems",
        "junkemail",
        "archive",
        "calendar",
        "contacts",
        "tasks",
        "searchfolders",
        "root",
    ];
    let ids: String = names
        .iter()
        .map(|n| format!(r#"<t:DistinguishedFolderId Id="{n}"/>"#))
        .collect();
    let op = format!(
        r#"<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="folder:DisplayName"/><t:FieldURI FieldURI="folder:FolderClass"/><t:FieldURI FieldURI="folder:DistinguishedFolderId"/></t:AdditionalProperties></m:FolderShape><m:FolderIds>{ids}</m:FolderIds></m:GetFolder>"#
    );
    let root = f.call(&op).await;
    let c = codes(&root, "GetFolder");
    assert_eq!(c.len(), names.len());
    assert_eq!(c[11], "ErrorFolderNotFound");
    assert!(
        c.iter().enumerate().all(|(i, c)| i == 11 || c == "NoError"),
        "{c:?}"
    );
    let msgs = messages(&root, "GetFolder");
    let cal = msgs[8]
        .path(&["Folders", "CalendarFolder"])
        .expect("calendar is a CalendarFolder");
    assert_eq!(cal.child_text("FolderClass"), Some("IPF.Appointment"));
    let inbox = msgs[1].path(&["Folders", "Folder"]).unwrap();
    assert_eq!(inbox.child_text("DisplayName"), Some("Inbox"));
    assert_eq!(inbox.child_text("DistinguishedFolderId"), Some("inbox"));
}

#[tokio::test]
async fn create_find_rename_move_sync_and_delete() {
    let f = Fixture::new().await;
    let create = |parent: &str, name: &str| {
        format!(
            r#"<m:CreateFolder><m:ParentFolderId>{parent}</m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>{name}</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>"#
        )
    };
    let inbox = r#"<t:DistinguishedFolderId Id="inbox"/>"#;
    let sync = |state: &str| {
        format!(
            r#"<m:SyncFolderHierarchy><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape><m:SyncFolderId><t:DistinguishedFolderId Id="msgfolderroot"/></m:SyncFolderId><m:SyncState>{state}</m:SyncState></m:SyncFolderHierarchy>"#
        )
    };

    let first = f.call(&sync("")).await;
    let msg = &messages(&first, "SyncFolderHierarchy")[0];
    let created = msg.child("Changes").unwrap().children.len();
    assert_eq!(created, 11, "every default folder is new to an empty state");
    let state = msg.child_text("SyncState").unwrap().to_string();

    let root = f.call(&create(inbox, "Projects")).await;
    assert_eq!(codes(&root, "CreateFolder"), ["NoError"]);
    let projects = folder_ids(&root, "CreateFolder")[0].clone();
    let again = f.call(&create(inbox, "projects")).await;
    assert_eq!(codes(&again, "CreateFolder"), ["ErrorFolderExists"]);
    let child = f
        .call(&create(
            &format!(r#"<t:FolderId Id="{projects}"/>"#),
            "2026",
        ))
        .await;
    assert_eq!(codes(&child, "CreateFolder"), ["NoError"]);

    let after = f.call(&sync(&state)).await;
    let msg = &messages(&after, "SyncFolderHierarchy")[0];
    let kinds: Vec<&str> = msg
        .child("Changes")
        .unwrap()
        .children
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "Create").count(),
        2,
        "{kinds:?}"
    );
    let state = msg.child_text("SyncState").unwrap().to_string();

    let find = |deep: bool| {
        format!(
            r#"<m:FindFolder Traversal="{}"><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:IndexedPageItemView MaxEntriesReturned="100" Offset="0" BasePoint="Beginning"/><m:ParentFolderIds>{inbox}</m:ParentFolderIds></m:FindFolder>"#,
            if deep { "Deep" } else { "Shallow" }
        )
    };
    let shallow = f.call(&find(false)).await;
    let rf = messages(&shallow, "FindFolder")[0]
        .child("RootFolder")
        .unwrap();
    assert_eq!(rf.attr("TotalItemsInView"), Some("1"));
    assert_eq!(rf.attr("IncludesLastItemInRange"), Some("true"));
    let deep = f.call(&find(true)).await;
    assert_eq!(
        messages(&deep, "FindFolder")[0]
            .child("RootFolder")
            .unwrap()
            .attr("TotalItemsInView"),
        Some("2")
    );

    let rename = format!(
        r#"<m:UpdateFolder><m:FolderChanges><t:FolderChange><t:FolderId Id="{projects}"/><t:Updates><t:SetFolderField><t:FieldURI FieldURI="folder:DisplayName"/><t:Folder><t:DisplayName>Work</t:DisplayName></t:Folder></t:SetFolderField></t:Updates></t:FolderChange></m:FolderChanges></m:UpdateFolder>"#
    );
    assert_eq!(codes(&f.call(&rename).await, "UpdateFolder"), ["NoError"]);
    let names: Vec<String> = f
        .world
        .store
        .folders(&f.world.alice)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.name)
        .collect();
    assert!(names.contains(&"INBOX/Work/2026".to_string()), "{names:?}");

    let mv = format!(
        r#"<m:MoveFolder><m:ToFolderId><t:DistinguishedFolderId Id="msgfolderroot"/></m:ToFolderId><m:FolderIds><t:FolderId Id="{projects}"/></m:FolderIds></m:MoveFolder>"#
    );
    assert_eq!(codes(&f.call(&mv).await, "MoveFolder"), ["NoError"]);
    let names: Vec<String> = f
        .world
        .store
        .folders(&f.world.alice)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.name)
        .collect();
    assert!(names.contains(&"Work/2026".to_string()), "{names:?}");

    let undeletable = r#"<m:DeleteFolder DeleteType="HardDelete"><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:DeleteFolder>"#;
    assert_eq!(
        codes(&f.call(undeletable).await, "DeleteFolder"),
        ["ErrorDeleteDistinguishedFolder"]
    );
    let delete = format!(
        r#"<m:DeleteFolder DeleteType="HardDelete"><m:FolderIds><t:FolderId Id="{projects}"/></m:FolderIds></m:DeleteFolder>"#
    );
    assert_eq!(codes(&f.call(&delete).await, "DeleteFolder"), ["NoError"]);
    let gone = f.call(&sync(&state)).await;
    let msg = &messages(&gone, "SyncFolderHierarchy")[0];
    let deletes = msg
        .child("Changes")
        .unwrap()
        .children
        .iter()
        .filter(|c| c.name == "Delete")
        .count();
    assert_eq!(deletes, 2, "the folder and its child");

    let bad_state = f.call(&sync("bm90IGEgc3RhdGU=")).await;
    assert_eq!(
        codes(&bad_state, "SyncFolderHierarchy"),
        ["ErrorInvalidSyncStateData"]
    );
}

#[tokio::test]
async fn foreign_and_malformed_folder_ids_are_refused() {
    let f = Fixture::new().await;
    let bob = f.world.store.clone();
    let quota = 1 << 30;
    bob.create_mailbox(&f.world.bob, quota).await.unwrap();
    let bob_inbox = bob
        .folders(&f.world.bob)
        .await
        .unwrap()
        .into_iter()
        .find(|x| x.name == "INBOX")
        .unwrap();
    let bob_id = crate::ews::ids::EwsId::Folder(bob_inbox.item_id).encode();
    let get = |id: &str| {
        format!(
            r#"<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:FolderId Id="{id}"/></m:FolderIds></m:GetFolder>"#
        )
    };
    assert_eq!(
        codes(&f.call(&get(&bob_id)).await, "GetFolder"),
        ["ErrorAccessDenied"]
    );
    assert_eq!(
        codes(&f.call(&get("garbage!")).await, "GetFolder"),
        ["ErrorInvalidIdMalformed"]
    );
    let unknown = crate::ews::ids::EwsId::Folder("0190deadbeef".into()).encode();
    assert_eq!(
        codes(&f.call(&get(&unknown)).await, "GetFolder"),
        ["ErrorItemNotFound"],
        "a folder that is gone"
    );
    let other = r#"<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>bob@acme.test</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId></m:FolderIds></m:GetFolder>"#;
    assert_eq!(
        codes(&f.call(other).await, "GetFolder"),
        ["ErrorAccessDenied"]
    );
}

#[tokio::test]
async fn folder_classes_and_find_folder_restrictions() {
    let f = Fixture::new().await;
    let create = |el: &str, name: &str, class: &str| {
        format!(
            r#"<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="msgfolderroot"/></m:ParentFolderId><m:Folders><t:{el}>{class}<t:DisplayName>{name}</t:DisplayName></t:{el}></m:Folders></m:CreateFolder>"#
        )
    };
    for (el, name, class) in [
        ("Folder", "Plain", ""),
        ("ContactsFolder", "People", ""),
        ("Folder", "Mail", "<t:FolderClass>IPF.Note</t:FolderClass>"),
    ] {
        assert_eq!(
            codes(&f.call(&create(el, name, class)).await, "CreateFolder"),
            ["NoError"]
        );
    }
    let dup = f.call(&create("Folder", "plain", "")).await;
    let text = messages(&dup, "CreateFolder")[0]
        .child_text("MessageText")
        .unwrap()
        .to_string();
    assert!(text.contains("Could not create folder 'plain'"), "{text}");

    let find = |restriction: &str| {
        format!(
            r#"<m:FindFolder Traversal="Deep"><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape><m:Restriction>{restriction}</m:Restriction><m:ParentFolderIds><t:DistinguishedFolderId Id="msgfolderroot"/></m:ParentFolderIds></m:FindFolder>"#
        )
    };
    let by_name = find(
        r#"<t:IsEqualTo><t:FieldURI FieldURI="folder:DisplayName"/><t:FieldURIOrConstant><t:Constant Value="plain"/></t:FieldURIOrConstant></t:IsEqualTo>"#,
    );
    let root = f.call(&by_name).await;
    let rf = messages(&root, "FindFolder")[0]
        .child("RootFolder")
        .unwrap();
    assert_eq!(rf.attr("TotalItemsInView"), Some("1"));
    let plain = rf.path(&["Folders", "Folder"]).unwrap();
    assert_eq!(
        plain.child("FolderClass"),
        None,
        "created without a class, shown without one"
    );
    let contacts = find(
        r#"<t:IsEqualTo><t:FieldURI FieldURI="folder:FolderClass"/><t:FieldURIOrConstant><t:Constant Value="IPF.Contact"/></t:FieldURIOrConstant></t:IsEqualTo>"#,
    );
    let root = f.call(&contacts).await;
    let rf = messages(&root, "FindFolder")[0]
        .child("RootFolder")
        .unwrap();
    let names: Vec<&str> = rf
        .child("Folders")
        .unwrap()
        .children
        .iter()
        .map(|c| c.child_text("DisplayName").unwrap())
        .collect();
    assert_eq!(names, ["Contacts", "People"]);
    assert!(rf.path(&["Folders", "ContactsFolder"]).is_some());
}
