//! Impersonation bearer tokens: round trip, forgery, truncation, expiry, organization,
//! role lifecycle, key rotation, size and alphabet.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;

use super::support::*;
use crate::access::token::{decode, mint};
use crate::access::{
    AccessEngine, AccessLimits, Effect, MemoryBackend, RoleType, TokenError, TokenKeys,
};

const LIFETIME_MS: u64 = 900_000;

fn setup() -> (Arc<MemoryBackend>, AccessEngine, String, String) {
    let (backend, engine) = engine();
    let role = allow_all_role(&engine);
    let assumed = engine.assume_impersonation_role(ORG, &role, T0).unwrap();
    assert_eq!(assumed.expires_in, 900);
    (backend, engine, role, assumed.token)
}

fn parts(token: &str) -> (Vec<u8>, Vec<u8>) {
    let mut it = token.split('.');
    assert_eq!(it.next(), Some("mg1"));
    let payload = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
    let mac = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
    (payload, mac)
}

fn join(payload: &[u8], mac: &[u8]) -> String {
    format!(
        "mg1.{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(mac)
    )
}

#[test]
fn round_trip() {
    let (_, engine, role, token) = setup();
    let v = engine.verify_token(&token, T0 + 1).unwrap();
    assert_eq!(v.org, ORG);
    assert_eq!(v.role_id, role);
    assert_eq!(v.role_type, RoleType::FullAccess);
    assert_eq!(v.role_version, 1);
    assert_eq!(v.key_id, "k1");
    assert_eq!((v.issued_at_ms, v.expires_at_ms), (T0, T0 + LIFETIME_MS));
    assert_eq!(engine.verify_token_for(ORG, &token, T0 + 1).unwrap(), v);
    // Reusable until expiry.
    assert!(engine.verify_token(&token, T0 + 600_000).is_ok());
}

#[test]
fn flipped_bits_in_payload_never_verify() {
    let (_, engine, _, token) = setup();
    let (payload, mac) = parts(&token);
    for byte in 0..payload.len() {
        for bit in 0..8 {
            let mut forged = payload.clone();
            forged[byte] ^= 1 << bit;
            let err = engine.verify_token(&join(&forged, &mac), T0).unwrap_err();
            assert!(
                matches!(err, TokenError::BadSignature | TokenError::Malformed),
                "byte {byte} bit {bit}: {err:?}"
            );
        }
    }
    // A flip in the expiry (the last 8 bytes) still parses: it is the MAC that refuses it.
    let mut later = payload.clone();
    let last = later.len() - 1;
    later[last - 2] ^= 0x10;
    assert_eq!(
        engine.verify_token(&join(&later, &mac), T0),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn flipped_bits_in_mac_never_verify() {
    let (_, engine, _, token) = setup();
    let (payload, mac) = parts(&token);
    for byte in 0..mac.len() {
        for bit in 0..8 {
            let mut forged = mac.clone();
            forged[byte] ^= 1 << bit;
            assert_eq!(
                engine.verify_token(&join(&payload, &forged), T0),
                Err(TokenError::BadSignature)
            );
        }
    }
}

#[test]
fn truncated_and_garbage_tokens() {
    let (_, engine, _, token) = setup();
    for len in 0..token.len() {
        let cut = &token[..len];
        assert!(
            matches!(
                engine.verify_token(cut, T0),
                Err(TokenError::Malformed | TokenError::BadSignature)
            ),
            "{len}"
        );
    }
    let long = "a".repeat(300);
    for garbage in [
        "",
        "mg1",
        "mg1..",
        "mg1.AAAA.AAAA",
        "mg2.AAAA.AAAA",
        "Bearer x",
        "mg1.ü.x",
        "mg1.a b.c",
        long.as_str(),
    ] {
        assert_eq!(
            engine.verify_token(garbage, T0),
            Err(TokenError::Malformed),
            "{garbage}"
        );
    }
    // Extra trailing payload bytes are refused even with a valid-looking layout.
    let (mut payload, mac) = parts(&token);
    payload.push(0);
    assert_eq!(
        engine.verify_token(&join(&payload, &mac), T0),
        Err(TokenError::Malformed)
    );
}

#[test]
fn expiry_boundary() {
    let (_, engine, _, token) = setup();
    assert!(engine.verify_token(&token, T0 + LIFETIME_MS - 1).is_ok());
    assert_eq!(
        engine.verify_token(&token, T0 + LIFETIME_MS),
        Err(TokenError::Expired)
    );
    assert_eq!(
        engine.verify_token(&token, u64::MAX),
        Err(TokenError::Expired)
    );
}

#[test]
fn wrong_organization() {
    let (_, engine, _, token) = setup();
    assert_eq!(
        engine.verify_token_for(OTHER_ORG, &token, T0),
        Err(TokenError::WrongOrganization)
    );
}

#[test]
fn deleted_role_and_updated_role() {
    let (_, engine, role, token) = setup();
    engine
        .update_impersonation_role(ORG, &role, role_input(vec![]), &Directory, T0 + 1)
        .unwrap();
    assert_eq!(
        engine.verify_token(&token, T0 + 2),
        Err(TokenError::RoleChanged)
    );
    let fresh = engine
        .assume_impersonation_role(ORG, &role, T0 + 2)
        .unwrap()
        .token;
    assert_eq!(engine.verify_token(&fresh, T0 + 3).unwrap().role_version, 2);
    engine.delete_impersonation_role(ORG, &role).unwrap();
    assert_eq!(
        engine.verify_token(&fresh, T0 + 4),
        Err(TokenError::UnknownRole)
    );
    assert_eq!(
        engine
            .assume_impersonation_role(ORG, &role, T0)
            .unwrap_err()
            .aws_type(),
        "ResourceNotFoundException"
    );
    assert_eq!(
        engine
            .assume_impersonation_role(OTHER_ORG, &role, T0)
            .unwrap_err()
            .aws_type(),
        "OrganizationNotFoundException"
    );
}

#[test]
fn key_rotation() {
    let (_, engine, role, old) = setup();
    let k1 = keys().current;
    engine
        .set_token_keys(TokenKeys::new("k2", vec![9u8; 32]).with_previous(k1.0, k1.1))
        .unwrap();
    assert!(
        engine.verify_token(&old, T0 + 1).is_ok(),
        "previous key still accepted"
    );
    let new = engine
        .assume_impersonation_role(ORG, &role, T0)
        .unwrap()
        .token;
    assert_eq!(engine.verify_token(&new, T0 + 1).unwrap().key_id, "k2");
    engine
        .set_token_keys(TokenKeys::new("k3", vec![3u8; 32]).with_previous("k2", vec![9u8; 32]))
        .unwrap();
    assert_eq!(
        engine.verify_token(&old, T0 + 1),
        Err(TokenError::BadSignature),
        "retired key id"
    );
    assert!(engine.verify_token(&new, T0 + 1).is_ok());
    // Same kid, different secret: a forgery, not a rotation.
    engine
        .set_token_keys(TokenKeys::new("k2", vec![1u8; 32]))
        .unwrap();
    assert_eq!(
        engine.verify_token(&new, T0 + 1),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn key_validation() {
    let short = TokenKeys::new("k", vec![0u8; 31]);
    assert_eq!(
        short.validate().unwrap_err().aws_type(),
        "InvalidParameterException"
    );
    let dup = TokenKeys::new("k", vec![0u8; 32]).with_previous("k", vec![1u8; 32]);
    assert!(dup.validate().is_err());
    let bad_kid = TokenKeys::new("k.1", vec![0u8; 32]);
    assert!(bad_kid.validate().is_err());
    let long_kid = TokenKeys::new("k".repeat(17), vec![0u8; 32]);
    assert!(long_kid.validate().is_err());
    assert!(
        AccessEngine::open(
            Arc::new(MemoryBackend::new()),
            AccessLimits::default(),
            short
        )
        .is_err()
    );
    assert!(!format!("{:?}", TokenKeys::new("k", vec![0x42u8; 32])).contains("66"));
    assert!(TokenKeys::generate("gen").validate().is_ok());
}

#[test]
fn another_daemon_with_the_same_keys_accepts_the_token() {
    let (backend, engine, _, token) = setup();
    let other = AccessEngine::open(backend, AccessLimits::default(), keys()).unwrap();
    assert_eq!(
        other.verify_token(&token, T0).unwrap(),
        engine.verify_token(&token, T0).unwrap()
    );
}

#[test]
fn length_and_alphabet() {
    let (_, _, _, token) = setup();
    assert!(token.len() <= 256);
    assert!(token.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    // Worst case: 16-char key id, 64-char organization id.
    let keys = TokenKeys::new("k".repeat(16), vec![1u8; 32]);
    let org = "o".repeat(64);
    let role = uuid::Uuid::new_v4().to_string();
    let t = mint(&keys, &org, &role, u64::MAX, u64::MAX - 1).unwrap();
    assert!(t.len() <= 256, "{}", t.len());
    assert!(t.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    let claims = decode(&keys, &t, 0).unwrap();
    assert_eq!(
        (claims.org.as_str(), claims.role_id.as_str()),
        (org.as_str(), role.as_str())
    );
    assert_eq!(claims.role_version, u64::MAX);
}

#[test]
fn authorize_impersonation_applies_current_role_rules() {
    let (_, engine) = engine();
    let role = engine
        .create_impersonation_role(
            ORG,
            role_input(vec![imp_rule("a", Effect::Allow, &["alice"], &[])]),
            None,
            &Directory,
            T0,
        )
        .unwrap();
    let token = engine
        .assume_impersonation_role(ORG, &role, T0)
        .unwrap()
        .token;
    let verified = engine.verify_token_for(ORG, &token, T0 + 1).unwrap();
    let alice = engine
        .authorize_impersonation(&verified, "alice@example.test", &Directory)
        .unwrap();
    assert!(alice.allowed());
    assert_eq!(alice.role_type, RoleType::FullAccess);
    let bob = engine
        .authorize_impersonation(&verified, "bob@example.test", &Directory)
        .unwrap();
    assert!(!bob.allowed());
    let carol = engine.authorize_impersonation(&verified, "carol@example.test", &Directory);
    assert_eq!(carol.unwrap_err().aws_type(), "EntityStateException");
    let ghost = engine.authorize_impersonation(&verified, "ghost@example.test", &Directory);
    assert_eq!(ghost.unwrap_err().aws_type(), "EntityNotFoundException");
    // A role updated after verification no longer authorizes with that token.
    engine
        .update_impersonation_role(
            ORG,
            &role,
            role_input(vec![imp_rule("a", Effect::Allow, &[], &[])]),
            &Directory,
            T0 + 2,
        )
        .unwrap();
    let stale = engine.authorize_impersonation(&verified, "alice@example.test", &Directory);
    assert_eq!(stale.unwrap_err().aws_type(), "ResourceNotFoundException");
}

proptest! {
    /// Arbitrary text never panics the verifier and never verifies.
    #[test]
    fn arbitrary_text_never_verifies(text in "\\PC{0,300}") {
        let keys = keys();
        prop_assert!(decode(&keys, &text, T0).is_err());
    }

    /// Replacing any one character of a valid token never yields a valid token.
    #[test]
    fn single_character_substitution_never_verifies(pos in 0usize..200, c in 0x21u8..=0x7e) {
        let keys = keys();
        let role = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
        let token = mint(&keys, ORG, role, 1, T0).unwrap();
        let pos = pos % token.len();
        let mut bytes = token.clone().into_bytes();
        prop_assume!(bytes[pos] != c);
        bytes[pos] = c;
        let forged = String::from_utf8(bytes).unwrap();
        prop_assert!(decode(&keys, &forged, T0).is_err());
    }
}
