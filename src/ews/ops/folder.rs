//! Folder operations: GetFolder, FindFolder, SyncFolderHierarchy, CreateFolder,
//! UpdateFolder (rename), MoveFolder, DeleteFolder and EmptyFolder, over the tree
//! of `ews::folders`.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::restrict::{self, Props, Value};
use super::shape::{Base, Path, Shape};
use super::{Reply, ids, truthy};
use crate::access::mailbox::Object;
use crate::events::audit::{MailboxAction, ObjectType};
use crate::ews::codes::ResponseCode;
use crate::ews::context::Context;
use crate::ews::folders::{self, Named, View};
use crate::ews::ids::EwsId;
use crate::ews::xml::{Element, Xml};

/// Folder trees read during one request, by mailbox.
#[derive(Default)]
pub struct Trees(HashMap<String, Vec<View>>);

impl Trees {
    /// The tree of `owner`'s mailbox (read once per request).
    pub async fn of(&mut self, ctx: &Context<'_>, owner: &str) -> Result<&[View], ResponseCode> {
        if !self.0.contains_key(owner) {
            let folders = ctx
                .ews
                .store
                .folders(owner)
                .await
                .map_err(|_| ResponseCode::ErrorNonExistentMailbox)?;
            self.0
                .insert(owner.to_string(), folders::tree(owner, folders));
        }
        Ok(self.0.get(owner).map(Vec::as_slice).unwrap_or_default())
    }

    /// Forgets a mailbox's tree after a change to it.
    pub fn forget(&mut self, owner: &str) {
        self.0.remove(owner);
    }
}

fn folder_object<'a>(v: &'a View, id: &'a str) -> Object<'a> {
    Object {
        kind: Some(ObjectType::Folder),
        folder_path: v.store.as_ref().map(|f| f.name.as_str()),
        folder_id: Some(id),
        item_id: None,
    }
}

/// Resolves a folder element, checks `action` on its mailbox (audited) and returns
/// its view.
pub async fn open_folder(
    ctx: &Context<'_>,
    trees: &mut Trees,
    el: &Element,
    action: MailboxAction,
) -> Result<(String, View), ResponseCode> {
    let Named { owner, id } = folders::resolve(ctx, el).await?;
    let view = trees
        .of(ctx, &owner)
        .await?
        .iter()
        .find(|v| v.id == id)
        .cloned()
        .ok_or(ResponseCode::ErrorFolderNotFound)?;
    let wire = view.id.encode();
    ctx.authorize(&owner, action, folder_object(&view, &wire))?;
    Ok((owner, view))
}

/// Writes one folder element in a shape.
pub fn write_folder(xml: &mut Xml, v: &View, shape: &Shape) {
    write_folder_sized(xml, v, shape, None);
}

/// [`write_folder`], with the folder's size in bytes for an ExtendedFieldURI
/// asking for PR_MESSAGE_SIZE_EXTENDED (0x0E08), when known.
pub fn write_folder_sized(xml: &mut Xml, v: &View, shape: &Shape, size: Option<u64>) {
    let el = v.element();
    xml.open(el, &[]);
    xml.empty(
        "t:FolderId",
        &[("Id", &v.id.encode()), ("ChangeKey", &v.change_key)],
    );
    if let Some(p) = v
        .parent
        .as_ref()
        .filter(|_| shape.wants("folder:ParentFolderId", false))
    {
        xml.empty("t:ParentFolderId", &[("Id", &p.encode())]);
    }
    if shape.wants("folder:FolderClass", false) && !v.class.is_empty() {
        xml.leaf("t:FolderClass", &v.class);
    }
    if shape.wants("folder:DisplayName", true) {
        xml.leaf("t:DisplayName", &v.display_name);
    }
    if shape.wants("folder:TotalCount", true) {
        xml.leaf("t:TotalCount", &v.total.to_string());
    }
    if shape.wants("folder:ChildFolderCount", true) {
        xml.leaf("t:ChildFolderCount", &v.children.to_string());
    }
    if let Some(size) = size {
        for e in shape.extended().filter(|e| e.tag == Some(0x0E08)) {
            let attrs = e.attrs();
            let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            xml.open("t:ExtendedProperty", &[]);
            xml.empty("t:ExtendedFieldURI", &attrs);
            xml.leaf("t:Value", &size.to_string());
            xml.close("t:ExtendedProperty");
        }
    }
    if shape.wants("folder:EffectiveRights", false) {
        crate::ews::item::write_effective_rights(xml);
    }
    if let Some(d) = v
        .distinguished
        .filter(|_| shape.wants("folder:DistinguishedFolderId", false))
    {
        xml.leaf("t:DistinguishedFolderId", d);
    }
    if el == "t:Folder" {
        if shape.wants("folder:PermissionSet", false) && shape.base != Base::AllProperties {
            xml.open("t:PermissionSet", &[])
                .empty("t:Permissions", &[])
                .close("t:PermissionSet");
        }
        if shape.wants("folder:UnreadCount", true) {
            xml.leaf("t:UnreadCount", &v.unread.to_string());
        }
    }
    xml.close(el);
}

/// GetFolder: one message per requested folder, in order.
pub async fn get_folder(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let shape = Shape::parse(op.child("FolderShape"));
    let mut trees = Trees::default();
    let mut reply = Reply::begin(xml, "GetFolder");
    for el in ids(op, "FolderIds") {
        match open_folder(ctx, &mut trees, el, MailboxAction::ReadHierarchy).await {
            Ok((owner, view)) => {
                let size = if shape.extended().any(|e| e.tag == Some(0x0E08)) {
                    folder_size(ctx, &owner, &view).await
                } else {
                    None
                };
                let x = reply.ok();
                x.open("m:Folders", &[]);
                write_folder_sized(x, &view, &shape, size);
                x.close("m:Folders");
                reply.end();
            }
            Err(code) => reply.fail(code),
        }
    }
    reply.finish();
}

/// The bytes a folder's messages take (the whole mailbox for root and the Top of
/// Information Store, which hold every folder).
async fn folder_size(ctx: &Context<'_>, owner: &str, view: &View) -> Option<u64> {
    let store = &ctx.ews.store;
    match &view.store {
        Some(f) => {
            let metas = store.messages(f.id, 1, u32::MAX).await.ok()?;
            Some(metas.iter().map(|m| m.size).sum())
        }
        None => store.quota(owner).await.ok().map(|q| q.used),
    }
}

/// Paging of FindFolder / FindItem: (offset, max) from IndexedPageItemView or
/// FractionalPageItemView.
pub fn paging(op: &Element, total: usize) -> (usize, usize) {
    if let Some(v) = op.child("IndexedPageItemView") {
        let offset: usize = v.attr("Offset").and_then(|o| o.parse().ok()).unwrap_or(0);
        let max = v
            .attr("MaxEntriesReturned")
            .and_then(|m| m.parse().ok())
            .unwrap_or(usize::MAX);
        let offset = if v.attr("BasePoint") == Some("End") {
            total.saturating_sub(offset.saturating_add(max.min(total)))
        } else {
            offset
        };
        (offset.min(total), max)
    } else if let Some(v) = op.child("FractionalPageItemView") {
        let num: usize = v
            .attr("Numerator")
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        let den: usize = v
            .attr("Denominator")
            .and_then(|o| o.parse().ok())
            .unwrap_or(1)
            .max(1);
        let max = v
            .attr("MaxEntriesReturned")
            .and_then(|m| m.parse().ok())
            .unwrap_or(usize::MAX);
        ((total.saturating_mul(num) / den).min(total), max)
    } else {
        (0, usize::MAX)
    }
}

/// The `RootFolder` paging attributes every client reads.
pub fn root_folder_attrs(offset: usize, shown: usize, total: usize) -> [(&'static str, String); 3] {
    [
        ("IndexedPagingOffset", (offset + shown).to_string()),
        ("TotalItemsInView", total.to_string()),
        (
            "IncludesLastItemInRange",
            (offset + shown >= total).to_string(),
        ),
    ]
}

impl Props for View {
    fn get(&self, path: &Path) -> Vec<Value> {
        let Path::Field(f) = path else {
            return Vec::new();
        };
        match f.as_str() {
            "folder:DisplayName" => vec![Value::Text(self.display_name.clone())],
            "folder:FolderClass" if !self.class.is_empty() => vec![Value::Text(self.class.clone())],
            "folder:TotalCount" => vec![Value::Int(i64::from(self.total))],
            "folder:ChildFolderCount" => vec![Value::Int(i64::from(self.children))],
            "folder:UnreadCount" => vec![Value::Int(i64::from(self.unread))],
            _ => Vec::new(),
        }
    }
}

/// FindFolder: the children (Shallow) or all descendants (Deep) of each parent,
/// filtered by `Restriction` (display name, class, counts).
pub async fn find_folder(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let shape = Shape::parse(op.child("FolderShape"));
    let deep = op.attr("Traversal") == Some("Deep");
    let mut trees = Trees::default();
    let mut reply = Reply::begin(xml, "FindFolder");
    let restriction = match op.child("Restriction").map(restrict::parse).transpose() {
        Ok(r) => r,
        Err(code) => {
            for _ in ids(op, "ParentFolderIds") {
                reply.fail(code);
            }
            return reply.finish();
        }
    };
    for el in ids(op, "ParentFolderIds") {
        match open_folder(ctx, &mut trees, el, MailboxAction::ReadHierarchy).await {
            Ok((owner, parent)) => {
                let tree = trees.of(ctx, &owner).await.unwrap_or_default();
                let mut found: Vec<&View> = if deep {
                    folders::descendants(tree, &parent.id)
                } else {
                    tree.iter()
                        .filter(|v| v.parent.as_ref() == Some(&parent.id))
                        .collect()
                };
                if let Some(r) = &restriction {
                    found.retain(|v| restrict::eval(r, *v));
                }
                let (offset, max) = paging(op, found.len());
                let page: Vec<&View> = found.iter().skip(offset).take(max).copied().collect();
                let attrs = root_folder_attrs(offset, page.len(), found.len());
                let x = reply.ok();
                let attrs: Vec<(&str, &str)> =
                    attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
                x.open("m:RootFolder", &attrs);
                x.open("t:Folders", &[]);
                for v in page {
                    write_folder(x, v, &shape);
                }
                x.close("t:Folders");
                x.close("m:RootFolder");
                reply.end();
            }
            Err(code) => reply.fail(code),
        }
    }
    reply.finish();
}

/// The hierarchy sync state: every folder's id and ChangeKey as of the last sync,
/// so the next one reports what was created, changed or deleted since (and the
/// state survives restarts: it lives with the client).
fn encode_state(seen: &[(String, String)]) -> String {
    let text: Vec<String> = seen.iter().map(|(id, key)| format!("{id} {key}")).collect();
    STANDARD.encode(format!("H1\n{}", text.join("\n")))
}

fn decode_state(state: &str) -> Option<HashMap<String, String>> {
    if state.trim().is_empty() {
        return Some(HashMap::new());
    }
    let raw = STANDARD.decode(state.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut lines = text.lines();
    (lines.next()? == "H1").then_some(())?;
    lines
        .map(|l| {
            l.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect()
}

/// SyncFolderHierarchy: what changed among the folders below `SyncFolderId`
/// (default: the root) since `SyncState`.
pub async fn sync_folder_hierarchy(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let shape = Shape::parse(op.child("FolderShape"));
    let mut trees = Trees::default();
    let mut reply = Reply::begin(xml, "SyncFolderHierarchy");
    let start = match op.child("SyncFolderId") {
        Some(el) => open_folder(ctx, &mut trees, el, MailboxAction::ReadHierarchy).await,
        None => match ctx.own_mailbox() {
            Ok(owner) => {
                let owner = owner.to_string();
                let root = Element {
                    name: "FolderId".into(),
                    attrs: vec![("Id".into(), EwsId::Root(owner).encode())],
                    ..Element::default()
                };
                open_folder(ctx, &mut trees, &root, MailboxAction::ReadHierarchy).await
            }
            Err(c) => Err(c),
        },
    };
    let (owner, top) = match start {
        Ok(found) => found,
        Err(code) => {
            reply.fail(code);
            return reply.finish();
        }
    };
    let Some(before) = decode_state(op.child_text("SyncState").unwrap_or("")) else {
        reply.fail(ResponseCode::ErrorInvalidSyncStateData);
        return reply.finish();
    };
    let tree = trees.of(ctx, &owner).await.unwrap_or_default();
    let now: Vec<&View> = folders::descendants(tree, &top.id);
    let seen: Vec<(String, String)> = now
        .iter()
        .map(|v| (v.id.encode(), v.change_key.clone()))
        .collect();
    let x = reply.ok();
    x.leaf("m:SyncState", &encode_state(&seen));
    x.leaf("m:IncludesLastFolderInRange", "true");
    x.open("m:Changes", &[]);
    for (v, (id, key)) in now.iter().zip(&seen) {
        let change = match before.get(id) {
            None => "t:Create",
            Some(k) if k != key => "t:Update",
            Some(_) => continue,
        };
        x.open(change, &[]);
        write_folder(x, v, &shape);
        x.close(change);
    }
    for gone in before
        .keys()
        .filter(|id| !seen.iter().any(|(s, _)| s == *id))
    {
        x.open("t:Delete", &[])
            .empty("t:FolderId", &[("Id", gone)])
            .close("t:Delete");
    }
    x.close("m:Changes");
    reply.end();
    reply.finish();
}

/// The store path for a new folder named `name` under `parent`.
fn child_path(parent: &View, name: &str) -> Result<String, ResponseCode> {
    let name = name.trim();
    if name.is_empty() || name.contains('/') || name.len() > 255 {
        return Err(ResponseCode::ErrorInvalidOperation);
    }
    Ok(match &parent.store {
        Some(f) => format!("{}/{name}", f.name),
        None => name.to_string(),
    })
}

/// A Success message carrying just the folder's id and ChangeKey (what
/// CreateFolder, UpdateFolder and MoveFolder answer).
fn id_message(reply: &mut Reply<'_>, view: &View) {
    let x = reply.ok();
    x.open("m:Folders", &[]);
    x.open(view.element(), &[]);
    x.empty(
        "t:FolderId",
        &[("Id", &view.id.encode()), ("ChangeKey", &view.change_key)],
    );
    x.close(view.element());
    x.close("m:Folders");
    reply.end();
}

/// CreateFolder: each `Folders` child becomes a folder under `ParentFolderId`.
pub async fn create_folder(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let mut trees = Trees::default();
    let parent = match op.child("ParentFolderId") {
        Some(el) => open_folder(ctx, &mut trees, el, MailboxAction::Create).await,
        None => Err(ResponseCode::ErrorFolderNotFound),
    };
    let mut reply = Reply::begin(xml, "CreateFolder");
    let wanted: Vec<&Element> = ids(op, "Folders");
    for folder in wanted {
        let made = match &parent {
            Ok((owner, parent)) => make_folder(ctx, owner, parent, folder).await,
            Err(code) => Err(*code),
        };
        match made {
            Ok(view) => id_message(&mut reply, &view),
            Err(ResponseCode::ErrorFolderExists) => {
                // exchangelib matches this text.
                let name = folder.child_text("DisplayName").unwrap_or("");
                let text = format!(
                    "Could not create folder '{name}'. A folder with that name already exists."
                );
                reply.error(ResponseCode::ErrorFolderExists, &text);
            }
            Err(code) => reply.fail(code),
        }
    }
    reply.finish();
}

async fn make_folder(
    ctx: &Context<'_>,
    owner: &str,
    parent: &View,
    folder: &Element,
) -> Result<View, ResponseCode> {
    let name = folder.child_text("DisplayName").unwrap_or("");
    let path = child_path(parent, name)?;
    // A folder is created with the class it names, else its element's (a
    // ContactsFolder is IPF.Contact), else none (as Exchange does for t:Folder).
    let class = match folder.child_text("FolderClass") {
        Some(c) => c.to_string(),
        None => match folder.name.as_str() {
            "CalendarFolder" => "IPF.Appointment".into(),
            "ContactsFolder" => "IPF.Contact".into(),
            "TasksFolder" => "IPF.Task".into(),
            _ => String::new(),
        },
    };
    let store = &ctx.ews.store;
    let existing = store
        .folders(owner)
        .await
        .map_err(|_| ResponseCode::ErrorFolderNotFound)?;
    if existing.iter().any(|f| f.name.eq_ignore_ascii_case(&path)) {
        return Err(ResponseCode::ErrorFolderExists);
    }
    let made = store
        .create_folder_of_class(owner, &path, &class)
        .await
        .map_err(|_| ResponseCode::ErrorFolderExists)?;
    let all = store.folders(owner).await.unwrap_or_default();
    folders::tree(owner, all)
        .into_iter()
        .find(|v| v.store_id() == Some(made.id))
        .ok_or(ResponseCode::ErrorFolderNotFound)
}

/// DeleteFolder: removes folders (and what they hold); distinguished folders stay.
pub async fn delete_folder(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let mut trees = Trees::default();
    let mut reply = Reply::begin(xml, "DeleteFolder");
    for el in ids(op, "FolderIds") {
        let done = match open_folder(ctx, &mut trees, el, MailboxAction::Delete).await {
            Ok((owner, view)) => {
                trees.forget(&owner);
                remove_folder(ctx, &view).await
            }
            Err(code) => Err(code),
        };
        reply.empty_or_fail(done);
    }
    reply.finish();
}

async fn remove_folder(ctx: &Context<'_>, view: &View) -> Result<(), ResponseCode> {
    let Some(folder) = view.store.as_ref().filter(|_| view.distinguished.is_none()) else {
        return Err(ResponseCode::ErrorDeleteDistinguishedFolder);
    };
    let store = &ctx.ews.store;
    let all = store.folders(&folder.mailbox_id).await.unwrap_or_default();
    let prefix = format!("{}/", folder.name);
    let mut doomed: Vec<_> = all.iter().filter(|f| f.name.starts_with(&prefix)).collect();
    doomed.sort_by_key(|f| std::cmp::Reverse(f.name.len()));
    for f in doomed.into_iter().chain(std::iter::once(folder)) {
        store
            .delete_folder(f.id)
            .await
            .map_err(|_| ResponseCode::ErrorCannotDeleteObject)?;
    }
    Ok(())
}

/// UpdateFolder: renames (`SetFolderField folder:DisplayName`); other fields are
/// accepted and left as they are.
pub async fn update_folder(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let mut trees = Trees::default();
    let mut reply = Reply::begin(xml, "UpdateFolder");
    for change in ids(op, "FolderChanges") {
        let done = match open_folder(ctx, &mut trees, change, MailboxAction::Update).await {
            Ok((owner, view)) => {
                trees.forget(&owner);
                rename_from_updates(ctx, &owner, &view, change).await
            }
            Err(code) => Err(code),
        };
        match done {
            Ok(view) => id_message(&mut reply, &view),
            Err(code) => reply.fail(code),
        }
    }
    reply.finish();
}

async fn rename_from_updates(
    ctx: &Context<'_>,
    owner: &str,
    view: &View,
    change: &Element,
) -> Result<View, ResponseCode> {
    // A folder's class says what it holds; Exchange refuses to change it.
    let class_change = change.child("Updates").is_some_and(|u| {
        u.children_named("SetFolderField").any(|s| {
            s.child("FieldURI").and_then(|f| f.attr("FieldURI")) == Some("folder:FolderClass")
                && s.children
                    .iter()
                    .find(|c| c.name.ends_with("Folder"))
                    .and_then(|f| f.child_text("FolderClass"))
                    .is_some_and(|c| c != view.class)
        })
    });
    if class_change {
        return Err(ResponseCode::ErrorObjectTypeChanged);
    }
    let new_name = change.child("Updates").and_then(|u| {
        u.children_named("SetFolderField").find_map(|s| {
            let is_name =
                s.child("FieldURI").and_then(|f| f.attr("FieldURI")) == Some("folder:DisplayName");
            let value = s.children.iter().find(|c| c.name.ends_with("Folder"))?;
            is_name.then(|| value.child_text("DisplayName").map(str::to_string))?
        })
    });
    let Some(name) = new_name else {
        return Ok(view.clone());
    };
    let folder = view.store.as_ref().ok_or(ResponseCode::ErrorAccessDenied)?;
    if view.distinguished.is_some() {
        return Err(ResponseCode::ErrorAccessDenied);
    }
    let path = match folders::parent_path(&folder.name) {
        Some(p) => format!("{p}/{}", name.trim()),
        None => name.trim().to_string(),
    };
    rename(ctx, owner, folder.id, &folder.name, &path).await
}

async fn rename(
    ctx: &Context<'_>,
    owner: &str,
    folder_id: i64,
    old: &str,
    new: &str,
) -> Result<View, ResponseCode> {
    if new.is_empty() || new.split('/').any(str::is_empty) {
        return Err(ResponseCode::ErrorInvalidOperation);
    }
    let store = &ctx.ews.store;
    if !old.eq_ignore_ascii_case(new) {
        let all = store.folders(owner).await.unwrap_or_default();
        if all.iter().any(|f| f.name.eq_ignore_ascii_case(new)) {
            return Err(ResponseCode::ErrorFolderExists);
        }
    }
    store
        .rename_folder(folder_id, new)
        .await
        .map_err(|_| ResponseCode::ErrorFolderExists)?;
    let all = store.folders(owner).await.unwrap_or_default();
    folders::tree(owner, all)
        .into_iter()
        .find(|v| v.store_id() == Some(folder_id))
        .ok_or(ResponseCode::ErrorFolderNotFound)
}

/// MoveFolder: the folder (with its subfolders) goes under `ToFolderId` in the
/// same mailbox.
pub async fn move_folder(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let mut trees = Trees::default();
    let target = match op.child("ToFolderId") {
        Some(el) => open_folder(ctx, &mut trees, el, MailboxAction::MoveTo).await,
        None => Err(ResponseCode::ErrorFolderNotFound),
    };
    let mut reply = Reply::begin(xml, "MoveFolder");
    for el in ids(op, "FolderIds") {
        let done = match (
            &target,
            open_folder(ctx, &mut trees, el, MailboxAction::Move).await,
        ) {
            (Ok((to_owner, to)), Ok((owner, view))) if *to_owner == owner => {
                match view.store.as_ref().filter(|_| view.distinguished.is_none()) {
                    Some(f) => {
                        let leaf = folders::display_name(&f.name);
                        match child_path(to, &leaf) {
                            Ok(path) => rename(ctx, &owner, f.id, &f.name, &path).await,
                            Err(c) => Err(c),
                        }
                    }
                    None => Err(ResponseCode::ErrorAccessDenied),
                }
            }
            (Ok(_), Ok(_)) => Err(ResponseCode::ErrorMoveCopyFailed),
            (Err(c), _) => Err(*c),
            (_, Err(c)) => Err(c),
        };
        match done {
            Ok(view) => id_message(&mut reply, &view),
            Err(code) => reply.fail(code),
        }
    }
    reply.finish();
}

/// CopyFolder: a copy of each folder (its messages and subfolders) under
/// `ToFolderId`.
pub async fn copy_folder(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let mut trees = Trees::default();
    let target = match op.child("ToFolderId") {
        Some(el) => open_folder(ctx, &mut trees, el, MailboxAction::CopyTo).await,
        None => Err(ResponseCode::ErrorFolderNotFound),
    };
    let mut reply = Reply::begin(xml, "CopyFolder");
    for el in ids(op, "FolderIds") {
        let done = match (
            &target,
            open_folder(ctx, &mut trees, el, MailboxAction::Copy).await,
        ) {
            (Ok((to_owner, to)), Ok((owner, view))) if *to_owner == owner => {
                copy_tree(ctx, &owner, &view, to).await
            }
            (Ok(_), Ok(_)) => Err(ResponseCode::ErrorMoveCopyFailed),
            (Err(c), _) => Err(*c),
            (_, Err(c)) => Err(c),
        };
        match done {
            Ok(view) => id_message(&mut reply, &view),
            Err(code) => reply.fail(code),
        }
    }
    reply.finish();
}

/// Copies `source` (a store folder) and everything below it under `to`.
async fn copy_tree(
    ctx: &Context<'_>,
    owner: &str,
    source: &View,
    to: &View,
) -> Result<View, ResponseCode> {
    let store = &ctx.ews.store;
    let src = source
        .store
        .as_ref()
        .ok_or(ResponseCode::ErrorMoveCopyFailed)?;
    let all = store
        .folders(owner)
        .await
        .map_err(|_| ResponseCode::ErrorFolderNotFound)?;
    let base = child_path(to, &folders::display_name(&src.name))?;
    if all.iter().any(|f| f.name.eq_ignore_ascii_case(&base)) {
        return Err(ResponseCode::ErrorFolderExists);
    }
    if base.starts_with(&format!("{}/", src.name)) {
        return Err(ResponseCode::ErrorMoveCopyFailed);
    }
    let prefix = format!("{}/", src.name);
    let mut sources: Vec<&crate::store::Folder> = all
        .iter()
        .filter(|f| f.id == src.id || f.name.starts_with(&prefix))
        .collect();
    sources.sort_by_key(|f| f.name.len());
    let mut top = None;
    for f in sources {
        let path = format!("{base}{}", &f.name[src.name.len()..]);
        let made = store
            .create_folder_of_class(owner, &path, &f.folder_class)
            .await
            .map_err(|_| ResponseCode::ErrorMoveCopyFailed)?;
        let uids: Vec<u32> = store
            .messages(f.id, 1, u32::MAX)
            .await
            .unwrap_or_default()
            .iter()
            .map(|m| m.uid)
            .collect();
        if !uids.is_empty() {
            store
                .copy_messages(f.id, uids, made.id, false)
                .await
                .map_err(|_| ResponseCode::ErrorMoveCopyFailed)?
                .map_err(|_| ResponseCode::ErrorQuotaExceeded)?;
        }
        top.get_or_insert(made.id);
    }
    let top = top.ok_or(ResponseCode::ErrorMoveCopyFailed)?;
    let all = store.folders(owner).await.unwrap_or_default();
    folders::tree(owner, all)
        .into_iter()
        .find(|v| v.store_id() == Some(top))
        .ok_or(ResponseCode::ErrorFolderNotFound)
}

/// EmptyFolder: removes every message (and with `DeleteSubFolders`, the
/// subfolders) of each folder.
pub async fn empty_folder(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let subfolders = truthy(op.attr("DeleteSubFolders"));
    let mut trees = Trees::default();
    let mut reply = Reply::begin(xml, "EmptyFolder");
    for el in ids(op, "FolderIds") {
        let done = match open_folder(ctx, &mut trees, el, MailboxAction::Delete).await {
            Ok((owner, view)) => empty(ctx, &owner, &view, subfolders).await,
            Err(code) => Err(code),
        };
        reply.empty_or_fail(done);
    }
    reply.finish();
}

async fn empty(
    ctx: &Context<'_>,
    owner: &str,
    view: &View,
    subfolders: bool,
) -> Result<(), ResponseCode> {
    let store = &ctx.ews.store;
    if let Some(folder) = &view.store {
        let uids: Vec<u32> = store
            .messages(folder.id, 1, u32::MAX)
            .await
            .map_err(|_| ResponseCode::ErrorFolderNotFound)?
            .iter()
            .map(|m| m.uid)
            .collect();
        if !uids.is_empty() {
            store
                .expunge(folder.id, uids)
                .await
                .map_err(|_| ResponseCode::ErrorCannotDeleteObject)?;
        }
    }
    if subfolders {
        let all = store.folders(owner).await.unwrap_or_default();
        let tree = folders::tree(owner, all);
        for child in tree.iter().filter(|v| v.parent.as_ref() == Some(&view.id)) {
            if child.distinguished.is_none() {
                remove_folder(ctx, child).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_state_round_trips_and_refuses_garbage() {
        let seen = vec![
            ("a".to_string(), "k1".to_string()),
            ("b".into(), "k2".into()),
        ];
        let back = decode_state(&encode_state(&seen)).unwrap();
        assert_eq!(back.get("b").map(String::as_str), Some("k2"));
        assert_eq!(decode_state("").unwrap().len(), 0);
        assert!(decode_state("!!").is_none());
        assert!(decode_state(&STANDARD.encode("X9\na b")).is_none());
    }

    #[test]
    fn paging_from_start_end_and_fraction() {
        let el = |xml: &str| crate::ews::xml::parse(xml.as_bytes()).unwrap();
        let op = el(
            r#"<F><IndexedPageItemView MaxEntriesReturned="10" Offset="5" BasePoint="Beginning"/></F>"#,
        );
        assert_eq!(paging(&op, 100), (5, 10));
        let op = el(
            r#"<F><IndexedPageItemView MaxEntriesReturned="10" Offset="0" BasePoint="End"/></F>"#,
        );
        assert_eq!(paging(&op, 100), (90, 10));
        let op = el(
            r#"<F><FractionalPageItemView MaxEntriesReturned="3" Numerator="1" Denominator="2"/></F>"#,
        );
        assert_eq!(paging(&op, 100), (50, 3));
        assert_eq!(paging(&el("<F/>"), 7), (0, usize::MAX));
        let op = el(r#"<F><IndexedPageItemView Offset="500"/></F>"#);
        assert_eq!(paging(&op, 7).0, 7);
    }
}
