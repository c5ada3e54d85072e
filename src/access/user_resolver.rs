//! The directory as the access engine sees it: impersonation targets and rule
//! users resolved by id, name or email to a user id and whether it is enabled.

use super::{ResolvedUser, UserResolver};
use crate::directory::{Directory, EntityKind, EntityState};

impl UserResolver for Directory {
    fn resolve_user(&self, org: &str, identifier: &str) -> Option<ResolvedUser> {
        let found = self
            .resolve_identifier(org, identifier, &[EntityKind::User])
            .ok()?;
        let user = self.describe_user(org, &found.id).ok()?;
        Some(ResolvedUser {
            id: user.base.id,
            enabled: user.base.state == EntityState::Enabled,
        })
    }
}
