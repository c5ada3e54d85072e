//! Field validators shared by rules and roles, one per constraint shape of the WorkMail
//! API model. Messages name the field and the constraint, never the value (values may be
//! huge or hostile).

use super::error::{AccessError, invalid};

/// Whether `value` is `[a-zA-Z0-9_-]{1,max}`, the model's id-like string shape
/// (its `ShortString` at 64): also what retention policy ids and names must be.
pub fn is_id_token(value: &str, max: usize) -> bool {
    !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `[a-zA-Z0-9_-]{1,max}`: rule names, role ids in rules, impersonation rule ids.
pub(super) fn id_token(field: &str, value: &str, max: usize) -> Result<(), AccessError> {
    if is_id_token(value, max) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field} must be 1-{max} characters of [a-zA-Z0-9_-]"
        )))
    }
}

/// Length in characters (not bytes), as the model counts it.
pub(super) fn char_len(
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), AccessError> {
    // Count at most max+1 chars so a huge value costs no more than a legal one.
    let n = value.chars().take(max + 1).count();
    if n < min || n > max {
        return Err(invalid(format!(
            "{field} must be {min}-{max} characters long"
        )));
    }
    Ok(())
}

/// Number of entries in a list field.
pub(super) fn list_len(field: &str, len: usize, max: usize) -> Result<(), AccessError> {
    if len > max {
        return Err(invalid(format!("{field} may hold at most {max} entries")));
    }
    Ok(())
}

/// `[\u0020-\u00FF]*`: access control rule descriptions (Latin-1 printable).
pub(super) fn latin1_printable(field: &str, value: &str) -> Result<(), AccessError> {
    if value.chars().all(|c| ('\u{20}'..='\u{ff}').contains(&c)) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field} may only contain characters U+0020 to U+00FF"
        )))
    }
}

/// `[^\x00-\x1F\x7F<>\\]`: role and impersonation-rule names; descriptions additionally
/// allow TAB, LF and CR (`allow_whitespace_controls`).
pub(super) fn no_markup_or_controls(
    field: &str,
    value: &str,
    allow_whitespace_controls: bool,
) -> Result<(), AccessError> {
    let bad = |c: char| match c {
        '\t' | '\n' | '\r' => !allow_whitespace_controls,
        '\u{0}'..='\u{1f}' | '\u{7f}' | '<' | '>' | '\\' => true,
        _ => false,
    };
    if value.chars().any(bad) {
        return Err(invalid(format!(
            "{field} must not contain control characters or < > \\"
        )));
    }
    Ok(())
}

/// EntityIdentifier: `[a-zA-Z0-9._%+@-]{1,256}` (a user id, user name or email).
pub(super) fn entity_identifier(field: &str, value: &str) -> Result<(), AccessError> {
    let ok = !value.is_empty()
        && value.len() <= 256
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._%+@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field} must be 1-256 characters of [a-zA-Z0-9._%+@-]"
        )))
    }
}

/// ClientToken: 1-128 printable ASCII without space (`[\x21-\x7e]+`).
pub(super) fn client_token(value: &str) -> Result<(), AccessError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "ClientToken must be 1-128 printable ASCII characters",
        ))
    }
}

/// Organization ids the engine accepts: `[a-zA-Z0-9_-]{1,64}` (directory-generated ids
/// are `m-` + 32 hex). Bounding them keeps every token under 256 characters.
pub(super) fn organization_id(value: &str) -> Result<(), AccessError> {
    id_token("OrganizationId", value, 64)
}

/// Impersonation role ids are lowercase hyphenated UUIDs, as the engine generates them.
pub(super) fn is_role_uuid(value: &str) -> bool {
    value.len() == 36
        && uuid::Uuid::try_parse(value).is_ok_and(|u| u.hyphenated().to_string() == value)
}
