//! Behaviour tests across the directory, one file per concern, sharing the
//! fixture below. Few password hashes on purpose: argon2 is slow.

mod addresses;
mod groups;
mod invariants;
mod lifecycle;
mod orgs;
mod permissions;
mod persistence;
mod personal_access_tokens;
mod resources;
mod shared;

use std::sync::Arc;

use super::*;

type R<T> = Result<T, DirectoryError>;

/// The WorkMail exception name of a failed call, or "ok".
fn code<T>(r: R<T>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.aws_type(),
    }
}

struct Fx {
    backend: Arc<MemoryBackend>,
    dir: Directory,
    org: String,
}

fn fixture() -> Fx {
    let backend = Arc::new(MemoryBackend::new());
    let dir = Directory::open(backend.clone()).expect("open empty");
    let org = dir
        .create_organization("acme", "example.test")
        .expect("org");
    Fx { backend, dir, org }
}

impl Fx {
    fn new_user(&self, name: &str) -> String {
        self.dir
            .create_user(
                &self.org,
                NewUser {
                    name,
                    display_name: name,
                    ..Default::default()
                },
            )
            .expect("create user")
    }

    /// A user registered as `name@example.test`.
    fn user(&self, name: &str) -> String {
        let id = self.new_user(name);
        self.dir
            .register_to_workmail(&self.org, &id, &format!("{name}@example.test"))
            .expect("register user");
        id
    }

    /// A group registered as `name@example.test`.
    fn group(&self, name: &str) -> String {
        let id = self
            .dir
            .create_group(&self.org, name, false)
            .expect("group");
        self.dir
            .register_to_workmail(&self.org, &id, &format!("{name}@example.test"))
            .expect("register group");
        id
    }

    /// A room registered as `name@example.test`.
    fn room(&self, name: &str) -> String {
        let id = self
            .dir
            .create_resource(
                &self.org,
                NewResource {
                    name,
                    resource_type: ResourceType::Room,
                    description: None,
                    hidden_from_gal: false,
                },
            )
            .expect("resource");
        self.dir
            .register_to_workmail(&self.org, &id, &format!("{name}@example.test"))
            .expect("register resource");
        id
    }

    fn add(&self, group: &str, member: &str) {
        self.dir
            .associate_member_to_group(&self.org, group, member)
            .expect("associate");
    }

    fn user_state(&self, id: &str) -> EntityState {
        self.dir
            .describe_user(&self.org, id)
            .map(|u| u.base.state)
            .expect("describe")
    }
}

#[test]
fn directory_is_shareable_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Directory>();
    let f = Arc::new(fixture());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let f = Arc::clone(&f);
            std::thread::spawn(move || {
                for i in 0..10 {
                    let name = format!("t{t}u{i}");
                    let id = f.user(&name);
                    assert!(
                        f.dir
                            .resolve_address(&format!("{name}@example.test"))
                            .is_some()
                    );
                    assert_eq!(f.dir.user_epoch(&id), Some((EntityState::Enabled, 0)));
                }
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().is_ok(), "worker panicked");
    }
    assert_eq!(f.dir.list_users(&f.org).map(|u| u.len()).ok(), Some(40));
    assert_eq!(f.dir.export().ok(), Some(f.backend.records()));
}
