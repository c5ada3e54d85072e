//! The in-memory directory: entities per organization plus the indexes that make
//! lookups cheap (addresses, names, domains, org aliases, id → owner). Indexes
//! are maintained in one place, [`State::put`], so loading and committing share
//! the same bookkeeping.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use super::backend::{Record, RecordKind};
use super::entity::Entity;
use super::error::DirectoryError;
use super::model::{EntityKind, Group, Organization, OrganizationState, Resource, User};
use super::pat::PersonalAccessToken;
use super::tx::Tx;

/// One organization and everything it owns.
#[derive(Debug, Clone)]
pub(crate) struct OrgData {
    pub(crate) org: Organization,
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) groups: BTreeMap<String, Group>,
    pub(crate) resources: BTreeMap<String, Resource>,
    /// (kind, lowercased name) → id, for entities that are not deleted.
    pub(crate) names: HashMap<(EntityKind, String), String>,
}

/// The owner of an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AddrOwner {
    pub(crate) kind: EntityKind,
    pub(crate) org: String,
    pub(crate) id: String,
}

/// All directory data held in memory.
#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    pub(crate) orgs: BTreeMap<String, OrgData>,
    /// Lowercased org alias → org id.
    pub(crate) org_aliases: HashMap<String, String>,
    /// Lowercase domain → org id. A domain belongs to one organization, which
    /// makes every address globally unique.
    pub(crate) domains: HashMap<String, String>,
    /// Lowercase address → owner, for every entity that is not deleted.
    pub(crate) addresses: HashMap<String, AddrOwner>,
    /// Entity id → (kind, org id), tombstones included.
    pub(crate) entities: HashMap<String, (EntityKind, String)>,
    /// Personal access tokens by token id: a login finds its token in one lookup.
    pub(crate) pats: BTreeMap<String, PersonalAccessToken>,
}

/// The index key of a name: names are unique case-insensitively.
pub(crate) fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// The index key of an address without allocating when it is already lowercase.
pub(crate) fn addr_key(addr: &str) -> Cow<'_, str> {
    if addr.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(addr.to_ascii_lowercase())
    } else {
        Cow::Borrowed(addr)
    }
}

/// Serialises one entity as its persisted record.
pub(crate) fn entity_record<E: Entity>(e: &E) -> Result<Record, serde_json::Error> {
    Ok(Record {
        kind: E::RECORD,
        id: e.base().id.clone(),
        org_id: e.base().org_id.clone(),
        json: serde_json::to_string(e)?,
    })
}

/// Serialises a personal access token as its persisted record.
pub(crate) fn pat_record(p: &PersonalAccessToken) -> Result<Record, serde_json::Error> {
    Ok(Record {
        kind: RecordKind::PersonalAccessToken,
        id: p.id.clone(),
        org_id: p.org_id.clone(),
        json: serde_json::to_string(p)?,
    })
}

/// Serialises an organization as its persisted record.
pub(crate) fn org_record(o: &Organization) -> Result<Record, serde_json::Error> {
    Ok(Record {
        kind: RecordKind::Organization,
        id: o.id.clone(),
        org_id: o.id.clone(),
        json: serde_json::to_string(o)?,
    })
}

/// Why one stored record cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordProblem {
    /// The JSON does not parse as the record's kind.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// The ids inside the JSON differ from the record's key.
    #[error("{0} does not match its record key")]
    KeyMismatch(&'static str),
    /// Two records of one kind share an id.
    #[error("id used twice")]
    DuplicateId,
}

/// Stored records that do not form a consistent directory: one line per problem,
/// each naming its record (`user u-1: id used twice`).
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub(crate) struct CorruptRecords(pub Vec<String>);

/// Takes an entity version's name and addresses out of the indexes where they
/// still name it.
fn unindex_base(
    kind: EntityKind,
    old: &super::model::EntityBase,
    names: &mut HashMap<(EntityKind, String), String>,
    addresses: &mut HashMap<String, AddrOwner>,
) {
    let key = (kind, name_key(&old.name));
    if names.get(&key) == Some(&old.id) {
        names.remove(&key);
    }
    for a in old.addresses() {
        if addresses.get(a).is_some_and(|o| o.id == old.id) {
            addresses.remove(a);
        }
    }
}

/// Adds one stored record to a change set, checking that the ids inside its JSON
/// are its key.
fn decode_into(tx: &mut Tx, r: &Record) -> Result<(), RecordProblem> {
    fn entity<E: Entity>(r: &Record) -> Result<E, RecordProblem> {
        let e: E = serde_json::from_str(&r.json)?;
        match e.base().id == r.id && e.base().org_id == r.org_id {
            true => Ok(e),
            false => Err(RecordProblem::KeyMismatch("id or org_id")),
        }
    }
    match r.kind {
        RecordKind::Organization => {
            let o: Organization = serde_json::from_str(&r.json)?;
            if o.id != r.id || o.id != r.org_id {
                return Err(RecordProblem::KeyMismatch("id"));
            }
            tx.insert_org(o);
        }
        RecordKind::User => tx.insert(entity::<User>(r)?),
        RecordKind::Group => tx.insert(entity::<Group>(r)?),
        RecordKind::Resource => tx.insert(entity::<Resource>(r)?),
        RecordKind::PersonalAccessToken => {
            let p: PersonalAccessToken = serde_json::from_str(&r.json)?;
            if p.id != r.id || p.org_id != r.org_id {
                return Err(RecordProblem::KeyMismatch("id or org_id"));
            }
            tx.pats.insert(p.id.clone(), Some(p));
        }
    }
    Ok(())
}

impl State {
    /// Builds the state from stored records, refusing anything inconsistent
    /// (bad JSON, id mismatch, unknown org, duplicate name or address).
    pub(crate) fn load(mut records: Vec<Record>) -> Result<State, CorruptRecords> {
        records.sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
        let mut st = State::default();
        let mut problems = Vec::new();
        for r in &records {
            let res = match r.kind {
                RecordKind::Organization => serde_json::from_str::<Organization>(&r.json)
                    .map_err(RecordProblem::from)
                    .and_then(|o| {
                        if o.id != r.id || o.id != r.org_id {
                            return Err(RecordProblem::KeyMismatch("id"));
                        }
                        Ok(st.put_org(o))
                    }),
                RecordKind::User => st.load_entity::<User>(r),
                RecordKind::Group => st.load_entity::<Group>(r),
                RecordKind::Resource => st.load_entity::<Resource>(r),
                RecordKind::PersonalAccessToken => st.load_pat(r),
            };
            match res {
                Ok(conflicts) => problems.extend(
                    conflicts
                        .into_iter()
                        .map(|c| format!("{} {}: {c}", r.kind, r.id)),
                ),
                Err(e) => problems.push(format!("{} {}: {e}", r.kind, r.id)),
            }
        }
        match problems.is_empty() {
            true => Ok(st),
            false => Err(CorruptRecords(problems)),
        }
    }

    fn load_entity<E: Entity>(&mut self, r: &Record) -> Result<Vec<String>, RecordProblem> {
        let e: E = serde_json::from_str(&r.json)?;
        if e.base().id != r.id || e.base().org_id != r.org_id {
            return Err(RecordProblem::KeyMismatch("id or org_id"));
        }
        if self.entities.contains_key(&r.id) {
            return Err(RecordProblem::DuplicateId);
        }
        Ok(self.put(e))
    }

    /// Loads one token record; its organization must be loaded (records of that kind
    /// sort after organizations).
    fn load_pat(&mut self, r: &Record) -> Result<Vec<String>, RecordProblem> {
        let p: PersonalAccessToken = serde_json::from_str(&r.json)?;
        if p.id != r.id || p.org_id != r.org_id {
            return Err(RecordProblem::KeyMismatch("id or org_id"));
        }
        if !self.orgs.contains_key(&p.org_id) {
            return Ok(vec![format!("unknown organization {}", p.org_id)]);
        }
        self.pats.insert(p.id.clone(), p);
        Ok(Vec::new())
    }

    /// Inserts or replaces an organization, re-indexing its alias and domains.
    /// Returns index conflicts (empty when consistent).
    pub(crate) fn put_org(&mut self, o: Organization) -> Vec<String> {
        let mut conflicts = Vec::new();
        self.unindex_org(&o.id);
        let key = name_key(&o.alias);
        match self.org_aliases.get(&key) {
            Some(other) if *other != o.id => {
                conflicts.push(format!("alias {} used twice", o.alias))
            }
            _ => {
                self.org_aliases.insert(key, o.id.clone());
            }
        }
        for d in &o.mail_domains {
            match self.domains.get(d) {
                Some(other) if *other != o.id => conflicts.push(format!("domain {d} used twice")),
                _ => {
                    self.domains.insert(d.clone(), o.id.clone());
                }
            }
        }
        if !o.mail_domains.contains(&o.default_mail_domain) {
            conflicts.push("default mail domain is not registered".to_string());
        }
        match self.orgs.get_mut(&o.id) {
            Some(data) => data.org = o,
            None => {
                let id = o.id.clone();
                self.orgs.insert(
                    id,
                    OrgData {
                        org: o,
                        users: BTreeMap::new(),
                        groups: BTreeMap::new(),
                        resources: BTreeMap::new(),
                        names: HashMap::new(),
                    },
                );
            }
        }
        conflicts
    }

    /// Inserts or replaces an entity, moving its name and addresses in the
    /// indexes. Tombstones hold neither. Returns index conflicts.
    pub(crate) fn put<E: Entity>(&mut self, e: E) -> Vec<String> {
        let State {
            orgs,
            domains,
            addresses,
            entities,
            ..
        } = self;
        let b = e.base();
        let Some(od) = orgs.get_mut(&b.org_id) else {
            return vec![format!("unknown organization {}", b.org_id)];
        };
        if let Some(old) = E::table_mut(od).remove(&b.id) {
            unindex_base(E::KIND, old.base(), &mut od.names, addresses);
        }
        let mut conflicts = Vec::new();
        if !b.is_deleted() {
            let key = (E::KIND, name_key(&b.name));
            match od.names.get(&key) {
                Some(other) if *other != b.id => {
                    conflicts.push(format!("name {} used twice", b.name))
                }
                _ => {
                    od.names.insert(key, b.id.clone());
                }
            }
            for a in b.addresses() {
                if domains.get(super::validate::email_domain(a)) != Some(&b.org_id) {
                    conflicts.push(format!("address {a} is outside the organization's domains"));
                }
                match addresses.get(a) {
                    Some(other) if other.id != b.id => {
                        conflicts.push(format!("address {a} used twice"))
                    }
                    _ => {
                        addresses.insert(
                            a.to_string(),
                            AddrOwner {
                                kind: E::KIND,
                                org: b.org_id.clone(),
                                id: b.id.clone(),
                            },
                        );
                    }
                }
            }
        }
        entities.insert(b.id.clone(), (E::KIND, b.org_id.clone()));
        E::table_mut(od).insert(b.id.clone(), e);
        conflicts
    }

    /// Applies a validated change set (already persisted).
    pub(crate) fn commit(&mut self, tx: Tx) {
        let conflicts = self.install(tx);
        debug_assert!(
            conflicts.is_empty(),
            "validated change set conflicts: {conflicts:?}"
        );
    }

    /// Replaces every organization, entity and token of `tx` with its new
    /// version, in two passes so that the order within the set does not matter:
    /// first every old version leaves the name, alias, domain and address
    /// indexes, then every new version enters them (organizations first, so
    /// entities of a new organization find it). An address moving from one entity
    /// to another in the set therefore lands with its new owner whichever is
    /// installed first. Returns index conflicts (empty when consistent).
    pub(crate) fn install(&mut self, tx: Tx) -> Vec<String> {
        let Tx {
            orgs,
            users,
            groups,
            resources,
            pats,
        } = tx;
        for id in orgs.keys() {
            self.unindex_org(id);
        }
        self.unindex::<User>(users.keys());
        self.unindex::<Group>(groups.keys());
        self.unindex::<Resource>(resources.keys());
        let mut conflicts = Vec::new();
        for o in orgs.into_values() {
            conflicts.extend(self.put_org(o));
        }
        for u in users.into_values() {
            conflicts.extend(self.put(u));
        }
        for g in groups.into_values() {
            conflicts.extend(self.put(g));
        }
        for r in resources.into_values() {
            conflicts.extend(self.put(r));
        }
        for (id, p) in pats {
            match p {
                Some(p) => self.pats.insert(id, p),
                None => self.pats.remove(&id),
            };
        }
        conflicts
    }

    /// Takes an organization's alias and domains out of the indexes (where they
    /// still name it); its data stays.
    fn unindex_org(&mut self, id: &str) {
        let Some(old) = self.orgs.get(id).map(|d| &d.org) else {
            return;
        };
        let key = name_key(&old.alias);
        if self.org_aliases.get(&key).is_some_and(|o| o == id) {
            self.org_aliases.remove(&key);
        }
        for d in &old.mail_domains {
            if self.domains.get(d).is_some_and(|o| o == id) {
                self.domains.remove(d);
            }
        }
    }

    /// Takes the names and addresses of these entities' current versions out of
    /// the indexes (where they still name them); the entities stay.
    fn unindex<'a, E: Entity>(&mut self, ids: impl Iterator<Item = &'a String>) {
        let State {
            orgs,
            addresses,
            entities,
            ..
        } = self;
        for id in ids {
            let Some((_, org)) = entities.get(id) else {
                continue;
            };
            let Some(od) = orgs.get_mut(org) else {
                continue;
            };
            let Some(old) = E::table(od).get(id).map(|e| e.base().clone()) else {
                continue;
            };
            unindex_base(E::KIND, &old, &mut od.names, addresses);
        }
    }

    /// Applies what another writer stored after the version this state is at:
    /// the records decoded and checked against their keys, then [`State::install`]ed.
    /// Deleting anything but a token is not a change the directory makes, so it is
    /// refused (the caller then reloads everything). On `Err` the state may be
    /// half-changed: the caller replaces it with a full load.
    pub(crate) fn apply_changes(
        &mut self,
        records: Vec<Record>,
        deleted: Vec<(RecordKind, String)>,
    ) -> Result<(), CorruptRecords> {
        let mut tx = Tx::default();
        let mut problems = Vec::new();
        for r in records {
            if let Err(e) = decode_into(&mut tx, &r) {
                problems.push(format!("{} {}: {e}", r.kind, r.id));
            }
        }
        for (kind, id) in deleted {
            match kind {
                RecordKind::PersonalAccessToken => {
                    tx.pats.insert(id, None);
                }
                other => problems.push(format!("{other} {id}: deleted")),
            }
        }
        if !problems.is_empty() {
            return Err(CorruptRecords(problems));
        }
        let conflicts = self.install(tx);
        match conflicts.is_empty() {
            true => Ok(()),
            false => Err(CorruptRecords(conflicts)),
        }
    }

    /// Every entity and organization as records, sorted by (kind, id).
    pub(crate) fn records(&self) -> Result<Vec<Record>, serde_json::Error> {
        let mut out = Vec::new();
        for od in self.orgs.values() {
            out.push(org_record(&od.org)?);
            for u in od.users.values() {
                out.push(entity_record(u)?);
            }
            for g in od.groups.values() {
                out.push(entity_record(g)?);
            }
            for r in od.resources.values() {
                out.push(entity_record(r)?);
            }
        }
        for p in self.pats.values() {
            out.push(pat_record(p)?);
        }
        out.sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
        Ok(out)
    }

    /// The organization, which must exist and be Active.
    pub(crate) fn active_org(&self, org_id: &str) -> Result<&OrgData, DirectoryError> {
        let od = self.orgs.get(org_id).ok_or_else(|| {
            DirectoryError::OrganizationNotFound(format!("no organization {org_id}"))
        })?;
        if od.org.state != OrganizationState::Active {
            return Err(DirectoryError::OrganizationState(format!(
                "organization {org_id} is {}",
                od.org.state
            )));
        }
        Ok(od)
    }

    /// An entity by id within an organization, tombstones included.
    pub(crate) fn get<E: Entity>(&self, org_id: &str, id: &str) -> Option<&E> {
        self.orgs.get(org_id).and_then(|od| E::table(od).get(id))
    }

    /// NameAvailability if a live entity of `kind` other than `except` has this name.
    pub(crate) fn name_free(
        &self,
        org_id: &str,
        kind: EntityKind,
        name: &str,
        except: Option<&str>,
    ) -> Result<(), DirectoryError> {
        let taken = self
            .orgs
            .get(org_id)
            .and_then(|od| od.names.get(&(kind, name_key(name))))
            .is_some_and(|id| Some(id.as_str()) != except);
        match taken {
            true => Err(DirectoryError::NameAvailability(format!(
                "a {} named {name} already exists",
                kind.as_str().to_ascii_lowercase()
            ))),
            false => Ok(()),
        }
    }

    /// EmailAddressInUse if a live entity other than `owner_id` has this (lowercase) address.
    pub(crate) fn address_free(&self, addr: &str, owner_id: &str) -> Result<(), DirectoryError> {
        match self.addresses.get(addr) {
            Some(o) if o.id != owner_id => Err(DirectoryError::EmailAddressInUse(format!(
                "{addr} is used by another {}",
                o.kind.as_str().to_ascii_lowercase()
            ))),
            _ => Ok(()),
        }
    }

    /// A newly generated id that no entity (or tombstone) has.
    pub(crate) fn fresh_id(&self, generate: fn() -> String) -> String {
        let mut id = generate();
        while self.entities.contains_key(&id) {
            id = generate();
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::model::{EntityBase, EntityState};

    fn org(id: &str, domain: &str) -> Organization {
        Organization {
            id: id.into(),
            alias: id.trim_start_matches("m-").into(),
            state: OrganizationState::Active,
            default_mail_domain: domain.into(),
            mail_domains: vec![domain.into()],
            created: 0,
            inbound_dmarc_enforced: true,
        }
    }

    fn group(id: &str, name: &str, email: Option<&str>) -> Group {
        let mut base = EntityBase::new(id.into(), "m-a", name, false, 0);
        base.email = email.map(str::to_string);
        base.state = EntityState::Enabled;
        Group {
            base,
            members: Vec::new(),
        }
    }

    #[test]
    fn addr_key_borrows_lowercase_input() {
        assert!(matches!(addr_key("bob@x.test"), Cow::Borrowed(_)));
        assert_eq!(addr_key("Bob@X.test"), "bob@x.test");
    }

    #[test]
    fn put_moves_name_and_addresses_and_reports_conflicts() {
        let mut st = State::default();
        assert!(st.put_org(org("m-a", "a.test")).is_empty());
        assert_eq!(st.put_org(org("m-b", "a.test")).len(), 1, "domain twice");
        assert!(st.put(group("g1", "One", Some("one@a.test"))).is_empty());
        // Rename and re-address: old keys go, new keys come.
        assert!(st.put(group("g1", "Uno", Some("uno@a.test"))).is_empty());
        assert!(!st.addresses.contains_key("one@a.test"));
        assert!(st.addresses.contains_key("uno@a.test"));
        let od = st.orgs.get("m-a").map(|o| o.names.len());
        assert_eq!(od, Some(1));
        // Another entity taking the same name or address is a conflict.
        assert_eq!(st.put(group("g2", "UNO", Some("uno@a.test"))).len(), 2);
        assert_eq!(
            st.put(group("g3", "three", Some("x@elsewhere.test"))).len(),
            1
        );
        // A tombstone holds nothing.
        let mut dead = group("g1", "Uno", None);
        dead.base.state = EntityState::Deleted;
        assert!(st.put(dead).is_empty());
        assert!(!st.addresses.contains_key("uno@a.test"));
        assert_eq!(st.entities.get("g1").map(|e| e.0), Some(EntityKind::Group));
    }

    #[test]
    fn changes_install_whatever_their_order() {
        let mut st = State::default();
        st.put_org(org("m-a", "a.test"));
        st.put(group("g1", "One", Some("x@a.test")));
        st.put(group("g2", "Two", Some("y@a.test")));
        // Another writer moved x@ from g1 to g2, renamed g2 "Deux" and gave g1
        // the name g2 gave up. Installed one by one in either order, the first
        // would clash with the other's old version.
        let records = vec![
            entity_record(&group("g2", "Deux", Some("x@a.test"))).unwrap(),
            entity_record(&group("g1", "Two", None)).unwrap(),
        ];
        assert!(st.apply_changes(records, Vec::new()).is_ok());
        let owner = st.addresses.get("x@a.test").map(|o| o.id.as_str());
        assert_eq!(owner, Some("g2"));
        assert!(!st.addresses.contains_key("y@a.test"));
        assert!(
            st.name_free("m-a", EntityKind::Group, "Two", Some("g1"))
                .is_ok()
        );
        assert!(st.name_free("m-a", EntityKind::Group, "Two", None).is_err());
        assert!(st.name_free("m-a", EntityKind::Group, "One", None).is_ok());
    }

    #[test]
    fn changes_that_are_not_a_directory_are_refused() {
        let mut st = State::default();
        st.put_org(org("m-a", "a.test"));
        st.put(group("g1", "One", Some("x@a.test")));
        let bad_json = Record {
            kind: RecordKind::Group,
            id: "g2".into(),
            org_id: "m-a".into(),
            json: "{".into(),
        };
        assert!(st.apply_changes(vec![bad_json], Vec::new()).is_err());
        let mut wrong_key = entity_record(&group("g2", "Two", None)).unwrap();
        wrong_key.id = "g3".into();
        assert!(st.apply_changes(vec![wrong_key], Vec::new()).is_err());
        let deleted = vec![(RecordKind::Group, "g1".to_string())];
        assert!(st.apply_changes(Vec::new(), deleted).is_err());
        let clash = entity_record(&group("g2", "Two", Some("x@a.test"))).unwrap();
        let e = st.apply_changes(vec![clash], Vec::new()).unwrap_err();
        assert!(e.to_string().contains("x@a.test used twice"), "{e}");
    }

    #[test]
    fn deleted_tokens_leave_and_new_organizations_arrive_with_their_entities() {
        let mut st = State::default();
        let records = vec![
            org_record(&org("m-a", "a.test")).unwrap(),
            entity_record(&group("g1", "One", Some("x@a.test"))).unwrap(),
        ];
        assert!(st.apply_changes(records, Vec::new()).is_ok());
        assert_eq!(st.domains.get("a.test").map(String::as_str), Some("m-a"));
        assert!(st.addresses.contains_key("x@a.test"));
        st.pats.insert(
            "t1".into(),
            PersonalAccessToken {
                id: "t1".into(),
                org_id: "m-a".into(),
                user_id: "u".into(),
                name: "n".into(),
                created: 0,
                seq: 0,
                last_used: None,
                expires: 1,
                scopes: Vec::new(),
                secret_sha256: String::new(),
            },
        );
        let gone = vec![(RecordKind::PersonalAccessToken, "t1".to_string())];
        assert!(st.apply_changes(Vec::new(), gone).is_ok());
        assert!(st.pats.is_empty());
    }

    #[test]
    fn load_refuses_an_entity_of_an_unknown_org() {
        let rec = entity_record(&group("g1", "One", None)).unwrap_or_else(|e| panic!("{e}"));
        assert!(State::load(vec![rec]).is_err());
    }
}
