//! Property: whatever sequence of create / register / alias / primary-change /
//! deregister / delete / membership operations runs, every address resolves to
//! exactly one live entity that lists it, tombstones hold none, and a reload
//! from the backend gives the same directory.

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    CreateUser(u8),
    CreateGroup(u8),
    CreateResource(u8),
    Register(u8, u8),
    Alias(u8, u8),
    DeleteAlias(u8, u8),
    Primary(u8, u8),
    Deregister(u8),
    Delete(u8),
    Associate(u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6).prop_map(Op::CreateUser),
        (0u8..6).prop_map(Op::CreateGroup),
        (0u8..6).prop_map(Op::CreateResource),
        (any::<u8>(), 0u8..10).prop_map(|(e, a)| Op::Register(e, a)),
        (any::<u8>(), 0u8..10).prop_map(|(e, a)| Op::Alias(e, a)),
        (any::<u8>(), 0u8..10).prop_map(|(e, a)| Op::DeleteAlias(e, a)),
        (any::<u8>(), 0u8..10).prop_map(|(e, a)| Op::Primary(e, a)),
        any::<u8>().prop_map(Op::Deregister),
        any::<u8>().prop_map(Op::Delete),
        (any::<u8>(), any::<u8>()).prop_map(|(g, m)| Op::Associate(g, m)),
    ]
}

/// Ten addresses over two domains, in mixed case so case-folding is exercised.
fn addr(i: u8) -> String {
    let domain = if i.is_multiple_of(2) {
        "example.test"
    } else {
        "Second.Test"
    };
    if i.is_multiple_of(3) {
        format!("A{i}@{domain}")
    } else {
        format!("a{i}@{domain}")
    }
}

struct World {
    dir: Directory,
    backend: Arc<MemoryBackend>,
    org: String,
    /// Every id ever created, in creation order, with its kind.
    ids: Vec<(EntityKind, String)>,
}

impl World {
    fn pick(&self, i: u8) -> Option<&(EntityKind, String)> {
        match self.ids.len() {
            0 => None,
            n => self.ids.get(usize::from(i) % n),
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), DirectoryError> {
        let (d, org) = (&self.dir, self.org.as_str());
        match op {
            Op::CreateUser(n) => {
                let name = format!("n{n}");
                let id = d.create_user(
                    org,
                    NewUser {
                        name: &name,
                        display_name: "x",
                        ..Default::default()
                    },
                )?;
                self.ids.push((EntityKind::User, id));
            }
            Op::CreateGroup(n) => {
                let id = d.create_group(org, &format!("n{n}"), false)?;
                self.ids.push((EntityKind::Group, id));
            }
            Op::CreateResource(n) => {
                let name = format!("n{n}");
                let new = NewResource {
                    name: &name,
                    resource_type: ResourceType::Room,
                    description: None,
                    hidden_from_gal: false,
                };
                let id = d.create_resource(org, new)?;
                self.ids.push((EntityKind::Resource, id));
            }
            Op::Register(e, a) => {
                if let Some((_, id)) = self.pick(*e) {
                    d.register_to_workmail(org, id, &addr(*a))?;
                }
            }
            Op::Alias(e, a) => {
                if let Some((_, id)) = self.pick(*e) {
                    d.create_alias(org, id, &addr(*a))?;
                }
            }
            Op::DeleteAlias(e, a) => {
                if let Some((_, id)) = self.pick(*e) {
                    d.delete_alias(org, id, &addr(*a))?;
                }
            }
            Op::Primary(e, a) => {
                if let Some((_, id)) = self.pick(*e) {
                    d.update_primary_email_address(org, id, &addr(*a))?;
                }
            }
            Op::Deregister(e) => {
                if let Some((_, id)) = self.pick(*e) {
                    d.deregister_from_workmail(org, id)?;
                }
            }
            Op::Delete(e) => {
                if let Some((kind, id)) = self.pick(*e) {
                    match kind {
                        EntityKind::User => d.delete_user(org, id)?,
                        EntityKind::Group => d.delete_group(org, id)?,
                        EntityKind::Resource => d.delete_resource(org, id)?,
                    }
                }
            }
            Op::Associate(g, m) => {
                if let (Some((EntityKind::Group, gid)), Some((_, mid))) =
                    (self.pick(*g), self.pick(*m))
                {
                    d.associate_member_to_group(org, gid, mid)?;
                }
            }
        }
        Ok(())
    }

    /// (id, kind, state, addresses) of every entity, tombstones included.
    fn snapshot(&self) -> Vec<(String, EntityKind, EntityState, Vec<String>)> {
        let org = self.org.as_str();
        self.ids
            .iter()
            .filter_map(|(kind, id)| {
                let base = match kind {
                    EntityKind::User => self.dir.describe_user(org, id).map(|e| e.base),
                    EntityKind::Group => self.dir.describe_group(org, id).map(|e| e.base),
                    EntityKind::Resource => self.dir.describe_resource(org, id).map(|e| e.base),
                }
                .ok()?;
                let addrs = base.addresses().map(str::to_string).collect();
                Some((id.clone(), *kind, base.state, addrs))
            })
            .collect()
    }

    fn check_invariants(&self) -> Result<(), TestCaseError> {
        let snap = self.snapshot();
        prop_assert_eq!(
            snap.len(),
            self.ids.len(),
            "every created id is describable"
        );
        let mut owner_of: HashMap<String, (String, EntityKind, EntityState)> = HashMap::new();
        for (id, kind, state, addrs) in &snap {
            if *state == EntityState::Deleted {
                prop_assert!(addrs.is_empty(), "tombstone {} holds addresses", id);
            }
            for a in addrs {
                prop_assert_eq!(a.clone(), a.to_ascii_lowercase());
                let prev = owner_of.insert(a.clone(), (id.clone(), *kind, *state));
                prop_assert!(prev.is_none(), "{} owned twice", a);
            }
        }
        // Every pool address: resolves exactly to its listed owner, or to nothing.
        for i in 0..10u8 {
            let a = addr(i);
            let key = a.to_ascii_lowercase();
            let described = self.dir.describe_entity(&self.org, &a).ok();
            let delivered = self.dir.resolve_address(&a);
            match owner_of.get(&key) {
                Some((id, kind, state)) => {
                    prop_assert_eq!(described.map(|s| (s.id, s.kind)), Some((id.clone(), *kind)));
                    let want = match (state, kind) {
                        (EntityState::Enabled, EntityKind::User) => Some(Recipient::User {
                            org: self.org.clone(),
                            id: id.clone(),
                        }),
                        (EntityState::Enabled, EntityKind::Group) => Some(Recipient::Group {
                            org: self.org.clone(),
                            id: id.clone(),
                        }),
                        (EntityState::Enabled, EntityKind::Resource) => Some(Recipient::Resource {
                            org: self.org.clone(),
                            id: id.clone(),
                        }),
                        _ => None,
                    };
                    prop_assert_eq!(delivered, want);
                }
                None => {
                    prop_assert!(described.is_none(), "{} resolves but nobody lists it", a);
                    prop_assert!(delivered.is_none());
                }
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_address_resolves_to_exactly_one_live_entity(ops in prop::collection::vec(op(), 1..40)) {
        let backend = Arc::new(MemoryBackend::new());
        let dir = Directory::open(backend.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let org = dir.create_organization("prop", "example.test").map_err(|e| TestCaseError::fail(e.to_string()))?;
        dir.register_mail_domain(&org, "second.test").map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut w = World { dir, backend, org, ids: Vec::new() };
        for op in &ops {
            if let Err(e) = w.apply(op) {
                prop_assert!(!matches!(e, DirectoryError::Backend(_)), "{:?} -> {}", op, e);
            }
            w.check_invariants()?;
        }
        // Memory equals the backend, and a reload equals memory.
        let exported = w.dir.export().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&exported, &w.backend.records());
        let reopened = Directory::open(w.backend.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(reopened.export().map_err(|e| TestCaseError::fail(e.to_string()))?, exported);
    }
}
