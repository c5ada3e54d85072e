//! Inputs and helpers shared by many actions: the organization input, the
//! organization-plus-entity input, paging, prefix filters, dates, and running a
//! change that answers `{}`.

use std::sync::Arc;

use serde::Deserialize;

use super::Empty;
use crate::admin::error::ApiError;
use crate::admin::paginate;
use crate::admin::state::{AdminState, secs};

/// An organization plus one entity (user, group or resource) by id, name or email.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrgEntity {
    /// Organization id.
    pub organization_id: String,
    /// Entity identifier.
    pub entity_id: String,
}

/// An organization id alone.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrgIn {
    /// Organization id.
    pub organization_id: String,
}

/// One page of `items` for a list action's MaxResults and NextToken, with
/// the model's largest page of 100.
pub fn page<T>(
    items: Vec<T>,
    max_results: Option<i64>,
    next_token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    paginate::page(items, max_results, next_token, 100)
}

/// Runs a blocking change that answers nothing (`{}`).
pub async fn apply<E: Into<ApiError>>(
    state: &Arc<AdminState>,
    f: impl FnOnce(&AdminState) -> Result<(), E> + Send + 'static,
) -> Result<Empty, ApiError> {
    state.blocking(move |s| f(s).map_err(Into::into)).await?;
    Ok(Empty {})
}

/// An optional epoch-ms date as epoch seconds.
pub fn date(ms: Option<u64>) -> Option<f64> {
    ms.map(secs)
}

/// Whether `value` starts with `prefix` (case-insensitive); an absent prefix matches all.
pub fn has_prefix(value: Option<&str>, prefix: Option<&str>) -> bool {
    match prefix {
        None | Some("") => true,
        Some(p) => {
            value.is_some_and(|v| v.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_case_insensitively_and_absent_values_never() {
        assert!(has_prefix(Some("Alice"), Some("al")));
        assert!(has_prefix(Some("alice"), None));
        assert!(has_prefix(None, Some("")));
        assert!(!has_prefix(None, Some("a")));
        assert!(!has_prefix(Some("al"), Some("alice")));
        // A prefix ending inside a multi-byte character does not panic.
        assert!(!has_prefix(Some("é"), Some("x")));
    }

    #[test]
    fn dates_are_epoch_seconds() {
        assert_eq!(date(Some(1_500)), Some(1.5));
        assert_eq!(date(None), None);
    }
}
