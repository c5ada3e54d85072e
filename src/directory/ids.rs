//! Identifier generation and recognition, in the formats DESIGN.md fixes:
//! organizations `m-` + 32 lowercase hex, resources `r-` + 32 lowercase hex,
//! users and groups lowercase UUIDv4.

use rand::RngCore;

/// A new organization id: `m-` followed by 32 lowercase hex digits (128 random bits).
pub fn new_org_id() -> String {
    format!("m-{}", random_hex32())
}

/// A new resource id: `r-` followed by 32 lowercase hex digits.
pub fn new_resource_id() -> String {
    format!("r-{}", random_hex32())
}

/// A new user or group id: a lowercase hyphenated UUIDv4.
pub fn new_entity_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `s` has the organization id shape `^m-[0-9a-f]{32}$`.
pub fn is_org_id(s: &str) -> bool {
    prefixed_hex32(s, "m-")
}

/// Whether `s` has the resource id shape `^r-[0-9a-f]{32}$`.
pub fn is_resource_id(s: &str) -> bool {
    prefixed_hex32(s, "r-")
}

/// Whether `s` is a lowercase hyphenated version-4 UUID, as this directory generates.
pub fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 36 {
        return false;
    }
    for (i, &c) in b.iter().enumerate() {
        let ok = match i {
            8 | 13 | 18 | 23 => c == b'-',
            14 => c == b'4',
            19 => matches!(c, b'8' | b'9' | b'a' | b'b'),
            _ => is_lower_hex(c),
        };
        if !ok {
            return false;
        }
    }
    true
}

fn random_hex32() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn prefixed_hex32(s: &str, prefix: &str) -> bool {
    match s.strip_prefix(prefix) {
        Some(rest) => rest.len() == 32 && rest.bytes().all(is_lower_hex),
        None => false,
    }
}

fn is_lower_hex(c: u8) -> bool {
    c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_the_documented_shapes() {
        for _ in 0..50 {
            let o = new_org_id();
            assert_eq!(o.len(), 34);
            assert!(is_org_id(&o), "{o}");
            let r = new_resource_id();
            assert_eq!(r.len(), 34);
            assert!(is_resource_id(&r), "{r}");
            let u = new_entity_uuid();
            assert!(is_uuid_v4(&u), "{u}");
        }
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(new_org_id(), new_org_id());
        assert_ne!(new_resource_id(), new_resource_id());
        assert_ne!(new_entity_uuid(), new_entity_uuid());
    }

    #[test]
    fn recognisers_reject_near_misses() {
        assert!(is_org_id("m-0123456789abcdef0123456789abcdef"));
        // Doc examples with non-hex letters, upper case, wrong length, wrong prefix.
        assert!(!is_org_id("m-a123b4c5de678fg9h0ij1k2lm234no56"));
        assert!(!is_org_id("m-0123456789ABCDEF0123456789abcdef"));
        assert!(!is_org_id("m-0123456789abcdef0123456789abcde"));
        assert!(!is_org_id("r-0123456789abcdef0123456789abcdef"));
        assert!(is_resource_id("r-0123456789a0123456789b0123456789"));
        assert!(!is_resource_id("m-0123456789a0123456789b0123456789"));
        assert!(is_uuid_v4("12345678-1234-4234-9234-123456789012"));
        assert!(
            !is_uuid_v4("12345678-1234-1234-1234-123456789012"),
            "not v4"
        );
        assert!(!is_uuid_v4("12345678-1234-4234-9234-12345678901A"));
        assert!(!is_uuid_v4("S-1-5-18"));
    }
}
