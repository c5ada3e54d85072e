//! The mailbox's folders as EWS sees them: the store's folders under two folders
//! EWS clients expect above them (`root` and `msgfolderroot`, "Top of Information
//! Store"), with parents taken from the `/`-separated store paths, the
//! distinguished names of the default folders, and resolution of a request's
//! `FolderId` / `DistinguishedFolderId` to one of them.

use super::codes::ResponseCode;
use super::context::Context;
use super::ids::EwsId;
use super::xml::Element;
use crate::store::{Folder, FolderKind};

/// One folder of the EWS tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub id: EwsId,
    pub parent: Option<EwsId>,
    pub class: String,
    pub display_name: String,
    pub total: u32,
    pub unread: u32,
    pub children: u32,
    /// The DistinguishedFolderId name, for the default folders and the two above.
    pub distinguished: Option<&'static str>,
    pub change_key: String,
    /// The store folder behind it; `None` for root and msgfolderroot.
    pub store: Option<Folder>,
}

impl View {
    /// The element name of this folder type.
    pub fn element(&self) -> &'static str {
        match self.class.as_str() {
            "IPF.Appointment" => "t:CalendarFolder",
            "IPF.Contact" => "t:ContactsFolder",
            "IPF.Task" => "t:TasksFolder",
            _ => "t:Folder",
        }
    }

    /// The store folder id, for folders that hold items.
    pub fn store_id(&self) -> Option<i64> {
        self.store.as_ref().map(|f| f.id)
    }
}

/// The display name of a store path's last segment (`INBOX` shows as `Inbox`).
pub fn display_name(path: &str) -> String {
    if path.eq_ignore_ascii_case("INBOX") {
        return "Inbox".into();
    }
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// The parent path of a store path; `None` at the top level.
pub fn parent_path(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(p, _)| p)
}

/// Builds the whole tree of `owner`'s mailbox from its store folders: root, top,
/// then the store folders in store order.
pub fn tree(owner: &str, folders: Vec<Folder>) -> Vec<View> {
    let root = EwsId::Root(owner.to_string());
    let top = EwsId::Top(owner.to_string());
    let parent_of = |f: &Folder| -> EwsId {
        parent_path(&f.name)
            .and_then(|p| folders.iter().find(|o| o.name == p))
            .map(|o| EwsId::Folder(o.item_id.clone()))
            .unwrap_or_else(|| top.clone())
    };
    let mut views: Vec<View> = folders
        .iter()
        .map(|f| View {
            id: EwsId::Folder(f.item_id.clone()),
            parent: Some(parent_of(f)),
            class: f.folder_class.clone(),
            display_name: display_name(&f.name),
            total: f.messages,
            unread: f.unseen,
            children: 0,
            distinguished: f.kind.map(FolderKind::as_str),
            change_key: f.change_key.clone(),
            store: Some(f.clone()),
        })
        .collect();
    let top_children = views
        .iter()
        .filter(|v| v.parent.as_ref() == Some(&top))
        .count();
    for i in 0..views.len() {
        let id = views[i].id.clone();
        views[i].children = views
            .iter()
            .filter(|v| v.parent.as_ref() == Some(&id))
            .count() as u32;
    }
    let virtual_folder = |id: EwsId, parent, name: &str, children, dist| View {
        change_key: crate::store::change_key(owner, 0),
        id,
        parent,
        class: String::new(),
        display_name: name.to_string(),
        total: 0,
        unread: 0,
        children,
        distinguished: Some(dist),
        store: None,
    };
    let mut all = vec![
        virtual_folder(root.clone(), None, "root", 1, "root"),
        virtual_folder(
            top,
            Some(root),
            "Top of Information Store",
            top_children as u32,
            "msgfolderroot",
        ),
    ];
    all.append(&mut views);
    all
}

/// Every descendant of `id` (depth first), for a Deep traversal.
pub fn descendants<'t>(tree: &'t [View], id: &EwsId) -> Vec<&'t View> {
    let mut out = Vec::new();
    for child in tree.iter().filter(|v| v.parent.as_ref() == Some(id)) {
        out.push(child);
        out.extend(descendants(tree, &child.id));
    }
    out
}

/// A folder a request names, with the mailbox that holds it.
pub struct Named {
    pub owner: String,
    pub id: EwsId,
}

/// Resolves a `FolderId`, `DistinguishedFolderId` or `ParentFolderId`-style
/// element (or a container holding one) to its mailbox and id.
pub async fn resolve(ctx: &Context<'_>, el: &Element) -> Result<Named, ResponseCode> {
    let el = match el.name.as_str() {
        "FolderId" | "DistinguishedFolderId" => el,
        _ => el
            .children
            .iter()
            .find(|c| c.name == "FolderId" || c.name == "DistinguishedFolderId")
            .ok_or(ResponseCode::ErrorFolderNotFound)?,
    };
    if el.name == "FolderId" {
        let id = EwsId::decode(el.attr("Id").unwrap_or(""))
            .map_err(|_| ResponseCode::ErrorInvalidIdMalformed)?;
        let owner = match &id {
            EwsId::Root(m) | EwsId::Top(m) => m.clone(),
            EwsId::Folder(item) => {
                ctx.ews
                    .store
                    .folder_by_item_id(item)
                    .await
                    // A well-formed id of a folder that is gone: Exchange's answer
                    // for a missing object (exchangelib expects it).
                    .map_err(|_| ResponseCode::ErrorItemNotFound)?
                    .mailbox_id
            }
            EwsId::Item(_) | EwsId::Attachment(_) => {
                return Err(ResponseCode::ErrorInvalidIdMalformed);
            }
        };
        return Ok(Named { owner, id });
    }
    let owner = match el.path(&["Mailbox", "EmailAddress"]) {
        Some(a) if !a.text.trim().is_empty() => ctx.mailbox_of(&a.text)?,
        _ => ctx.own_mailbox()?.to_string(),
    };
    let name = el.attr("Id").unwrap_or("");
    let id = match name {
        "root" => EwsId::Root(owner.clone()),
        "msgfolderroot" => EwsId::Top(owner.clone()),
        _ => {
            let kind = FolderKind::parse(name).ok_or(ResponseCode::ErrorFolderNotFound)?;
            let folders = ctx
                .ews
                .store
                .folders(&owner)
                .await
                .map_err(|_| ResponseCode::ErrorFolderNotFound)?;
            let f = folders
                .into_iter()
                .find(|f| f.kind == Some(kind))
                .ok_or(ResponseCode::ErrorFolderNotFound)?;
            EwsId::Folder(f.item_id)
        }
    };
    Ok(Named { owner, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(id: i64, name: &str, kind: Option<FolderKind>) -> Folder {
        Folder {
            id,
            mailbox_id: "u1".into(),
            name: name.into(),
            kind,
            folder_class: "IPF.Note".into(),
            uidvalidity: 1,
            uidnext: 1,
            highest_modseq: 1,
            subscribed: true,
            item_id: format!("f{id}"),
            change_key: "k".into(),
            messages: 2,
            unseen: 1,
        }
    }

    #[test]
    fn builds_parents_and_child_counts_from_paths() {
        let t = tree(
            "u1",
            vec![
                folder(1, "INBOX", Some(FolderKind::Inbox)),
                folder(2, "INBOX/a", None),
                folder(3, "INBOX/a/b", None),
                folder(4, "orphan/x", None),
            ],
        );
        let by = |id: &str| t.iter().find(|v| v.id == EwsId::Folder(id.into())).unwrap();
        assert_eq!(t[0].distinguished, Some("root"));
        assert_eq!(t[1].children, 2, "INBOX and the orphan hang under the top");
        assert_eq!(by("f1").display_name, "Inbox");
        assert_eq!(by("f1").children, 1);
        assert_eq!(by("f3").parent, Some(EwsId::Folder("f2".into())));
        assert_eq!(by("f4").parent, Some(EwsId::Top("u1".into())));
        assert_eq!(descendants(&t, &t[0].id).len(), 5);
    }
}
