//! Impersonation bearer tokens: signed, never stored, so any daemon holding the same keys
//! validates them and nothing has to be replicated or cleaned up.
//!
//! Format: `mg1.<payload>.<mac>`, both parts base64url without padding. The MAC is
//! HMAC-SHA256 over the ASCII text `mg1.<payload>` with the key named in the payload.
//! Payload (big-endian): version byte `1`; key id (u8 length + bytes); organization id;
//! role id; role version (u64); issued at (u64, epoch ms); expires at (u64, epoch ms).
//! Ids are stored compactly: tag 1 + 16 bytes for a lowercase UUID, tag 2 + 16 bytes for
//! `m-` + 32 lowercase hex, tag 0 + u8 length + bytes otherwise. With key ids of at most 16
//! and organization ids of at most 64 characters a token stays under 256 printable ASCII
//! characters (about 150 for directory-generated ids).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::error::{AccessError, invalid};
use super::validate;

/// Token lifetime: WorkMail's "must be passed within 15 minutes".
pub const TOKEN_LIFETIME_SECS: u64 = 900;
/// Longest token WorkMail's model allows.
pub const MAX_TOKEN_LEN: usize = 256;
const PREFIX: &str = "mg1";
const PAYLOAD_VERSION: u8 = 1;
const MAC_LEN: usize = 32;
const MIN_SECRET_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Signing keys: tokens are minted with `current`; `previous` is still accepted so a key
/// rotation does not cut off tokens issued in the last 15 minutes.
#[derive(Clone)]
pub struct TokenKeys {
    /// (key id, secret) used to mint and verify.
    pub current: (String, Vec<u8>),
    /// (key id, secret) accepted for verification only.
    pub previous: Option<(String, Vec<u8>)>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets never reach logs.
        f.debug_struct("TokenKeys")
            .field("current", &self.current.0)
            .field("previous", &self.previous.as_ref().map(|p| &p.0))
            .finish()
    }
}

impl TokenKeys {
    /// Keys with only a current key.
    pub fn new(kid: impl Into<String>, secret: impl Into<Vec<u8>>) -> TokenKeys {
        TokenKeys {
            current: (kid.into(), secret.into()),
            previous: None,
        }
    }

    /// A fresh random 32-byte key (first start, tests).
    pub fn generate(kid: impl Into<String>) -> TokenKeys {
        let secret: [u8; 32] = rand::random();
        TokenKeys::new(kid, secret.to_vec())
    }

    /// Adds the key being rotated out.
    pub fn with_previous(mut self, kid: impl Into<String>, secret: impl Into<Vec<u8>>) -> Self {
        self.previous = Some((kid.into(), secret.into()));
        self
    }

    /// Key ids are 1-16 `[a-zA-Z0-9_-]`, distinct; secrets at least 32 bytes.
    pub fn validate(&self) -> Result<(), AccessError> {
        for (kid, secret) in std::iter::once(&self.current).chain(self.previous.as_ref()) {
            validate::id_token("token key id", kid, 16)?;
            if secret.len() < MIN_SECRET_LEN {
                return Err(invalid(format!(
                    "token key secret must be at least {MIN_SECRET_LEN} bytes"
                )));
            }
        }
        if self
            .previous
            .as_ref()
            .is_some_and(|p| p.0 == self.current.0)
        {
            return Err(invalid("current and previous token key ids must differ"));
        }
        Ok(())
    }

    fn secret_for(&self, kid: &str) -> Option<&[u8]> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|(k, _)| k == kid)
            .map(|(_, s)| s.as_slice())
    }
}

/// Why a bearer token was refused. Every variant means HTTP 401 to the client; the
/// distinction is for logs and audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of ours (wrong shape, encoding or length).
    #[error("malformed token")]
    Malformed,
    /// MAC mismatch or unknown key id: forged, corrupted or signed with a retired key.
    #[error("bad token signature")]
    BadSignature,
    /// Past its expiry time.
    #[error("token expired")]
    Expired,
    /// The role (or its organization) no longer exists.
    #[error("impersonation role no longer exists")]
    UnknownRole,
    /// The role was updated after the token was issued.
    #[error("impersonation role changed since the token was issued")]
    RoleChanged,
    /// Issued for another organization than the one the request is for.
    #[error("token belongs to another organization")]
    WrongOrganization,
}

/// What a valid signature vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// Key that signed it.
    pub key_id: String,
    /// Organization id.
    pub org: String,
    /// Impersonation role id.
    pub role_id: String,
    /// Role version at issue time.
    pub role_version: u64,
    /// Issue time, epoch ms.
    pub issued_at_ms: u64,
    /// Expiry, epoch ms (exclusive: invalid from this instant on).
    pub expires_at_ms: u64,
}

/// Signs a token for a role, valid for [`TOKEN_LIFETIME_SECS`] from `now_ms`.
pub fn mint(
    keys: &TokenKeys,
    org: &str,
    role_id: &str,
    role_version: u64,
    now_ms: u64,
) -> Result<String, AccessError> {
    let (kid, secret) = &keys.current;
    let mut payload = Vec::with_capacity(96);
    payload.push(PAYLOAD_VERSION);
    put_raw(&mut payload, kid)?;
    put_id(&mut payload, org)?;
    put_id(&mut payload, role_id)?;
    payload.extend_from_slice(&role_version.to_be_bytes());
    payload.extend_from_slice(&now_ms.to_be_bytes());
    let expires = now_ms.saturating_add(TOKEN_LIFETIME_SECS * 1000);
    payload.extend_from_slice(&expires.to_be_bytes());

    let mut token = format!("{PREFIX}.{}", URL_SAFE_NO_PAD.encode(&payload));
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| invalid("bad token key"))?;
    mac.update(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    if token.len() > MAX_TOKEN_LEN {
        return Err(invalid("organization or role id too long for a token"));
    }
    Ok(token)
}

/// Checks shape, signature (constant time) and expiry. Role existence and version are
/// the engine's business, since they need current state.
pub fn decode(keys: &TokenKeys, token: &str, now_ms: u64) -> Result<TokenClaims, TokenError> {
    if token.len() > MAX_TOKEN_LEN || !token.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(TokenError::Malformed);
    }
    let (signed, mac_b64) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let (prefix, payload_b64) = signed.split_once('.').ok_or(TokenError::Malformed)?;
    if prefix != PREFIX {
        return Err(TokenError::Malformed);
    }
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| TokenError::Malformed)?;
    let mac_bytes = URL_SAFE_NO_PAD
        .decode(mac_b64)
        .map_err(|_| TokenError::Malformed)?;
    if mac_bytes.len() != MAC_LEN {
        return Err(TokenError::Malformed);
    }
    let claims = parse_payload(&payload).ok_or(TokenError::Malformed)?;
    let secret = keys
        .secret_for(&claims.key_id)
        .ok_or(TokenError::BadSignature)?;
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| TokenError::BadSignature)?;
    mac.update(signed.as_bytes());
    mac.verify_slice(&mac_bytes)
        .map_err(|_| TokenError::BadSignature)?;
    if now_ms >= claims.expires_at_ms {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

fn put_raw(out: &mut Vec<u8>, s: &str) -> Result<(), AccessError> {
    let len = u8::try_from(s.len()).map_err(|_| invalid("id too long for a token"))?;
    out.push(len);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_id(out: &mut Vec<u8>, id: &str) -> Result<(), AccessError> {
    if validate::is_role_uuid(id)
        && let Ok(u) = uuid::Uuid::try_parse(id)
    {
        out.push(1);
        out.extend_from_slice(u.as_bytes());
        return Ok(());
    }
    if let Some(hex_part) = id.strip_prefix("m-")
        && hex_part.len() == 32
        && hex_part
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && let Ok(bytes) = hex::decode(hex_part)
    {
        out.push(2);
        out.extend_from_slice(&bytes);
        return Ok(());
    }
    out.push(0);
    put_raw(out, id)
}

/// Bounds-checked reader over the payload; every failure is `None` (Malformed).
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u64(&mut self) -> Option<u64> {
        let b: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(u64::from_be_bytes(b))
    }

    fn raw(&mut self) -> Option<String> {
        let len = usize::from(self.byte()?);
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).ok()
    }

    fn id(&mut self) -> Option<String> {
        match self.byte()? {
            0 => self.raw(),
            1 => {
                let b: [u8; 16] = self.take(16)?.try_into().ok()?;
                Some(uuid::Uuid::from_bytes(b).hyphenated().to_string())
            }
            2 => Some(format!("m-{}", hex::encode(self.take(16)?))),
            _ => None,
        }
    }
}

fn parse_payload(payload: &[u8]) -> Option<TokenClaims> {
    let mut r = Reader(payload);
    if r.byte()? != PAYLOAD_VERSION {
        return None;
    }
    let claims = TokenClaims {
        key_id: r.raw()?,
        org: r.id()?,
        role_id: r.id()?,
        role_version: r.u64()?,
        issued_at_ms: r.u64()?,
        expires_at_ms: r.u64()?,
    };
    r.0.is_empty().then_some(claims)
}
