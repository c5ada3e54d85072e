//! Connection and login commands: STARTTLS, LOGIN, AUTHENTICATE PLAIN (SASL-IR), ID
//! and ENABLE. Logins go through the shared `Authenticator`, so a rule denial looks
//! exactly like a wrong password.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::core::{IString, NString};
use imap_codec::imap_types::extensions::enable::CapabilityEnable;

use crate::access::Protocol as AccessProtocol;
use crate::access::login::{Attempt, LoginResult};
use crate::imap::compress::Conn;
use crate::imap::reader::{Input, Reader};
use crate::imap::session::{Done, Flow, Imap};

/// STARTTLS: only on the plaintext listener and only once.
pub fn starttls(imap: &mut Imap) -> Done {
    if imap.tls || !imap.starttls_offered {
        return Done::bad("TLS is already active");
    }
    Done {
        status: "OK",
        text: "Begin TLS negotiation now".into(),
        flow: Flow::StartTls,
    }
}

/// LOGIN with a user name and password.
pub async fn login(imap: &mut Imap, user: &[u8], password: &[u8]) -> Done {
    if imap.login.is_some() {
        return Done::bad("Already logged in");
    }
    if !imap.tls {
        return Done::no("[PRIVACYREQUIRED] LOGIN is disabled until STARTTLS");
    }
    let (Ok(user), Ok(password)) = (std::str::from_utf8(user), std::str::from_utf8(password))
    else {
        return Done::no("[AUTHENTICATIONFAILED] Authentication failed");
    };
    check(imap, user, password).await
}

async fn check(imap: &mut Imap, user: &str, password: &str) -> Done {
    let attempt = Attempt {
        login: user,
        password,
        protocol: AccessProtocol::Imap,
        source_ip: imap.peer.ip(),
        user_agent: imap.user_agent.as_deref(),
    };
    match imap.ctx.auth.login(attempt).await {
        LoginResult::Success(session) => {
            let quota = imap.ctx.quota_bytes(&session.org_id, &session.user_id);
            if let Err(e) = imap.ctx.store.create_mailbox(&session.user_id, quota).await {
                return crate::imap::session::store_failure(e);
            }
            imap.login = Some(session);
            Done::ok(format!("[CAPABILITY {}] Logged in", imap.capabilities()))
        }
        LoginResult::Failed => Done::no("[AUTHENTICATIONFAILED] Authentication failed"),
        LoginResult::Throttled(_) => {
            Done::no("[UNAVAILABLE] Too many failed attempts; try again later")
        }
    }
}

/// AUTHENTICATE PLAIN, with the initial response inline (SASL-IR) or after `+ `.
pub async fn authenticate(
    imap: &mut Imap,
    mechanism: &AuthMechanism<'_>,
    initial: Option<&[u8]>,
    reader: &mut Reader,
    stream: &mut Conn,
) -> Done {
    if imap.login.is_some() {
        return Done::bad("Already logged in");
    }
    if !imap.tls {
        return Done::no("[PRIVACYREQUIRED] Authentication is disabled until STARTTLS");
    }
    if !matches!(mechanism, AuthMechanism::Plain) {
        return Done::no("Unsupported authentication mechanism; use PLAIN");
    }
    let response = match initial {
        Some(r) => r.to_vec(),
        None => {
            imap.out.extend_from_slice(b"+ \r\n");
            if imap.flush(stream).await.is_err() {
                return Done {
                    status: "BAD",
                    text: "Connection lost".into(),
                    flow: Flow::Close,
                };
            }
            let line = match reader.next(stream).await {
                Ok(Input::Message(m)) => m,
                _ => {
                    return Done {
                        status: "BAD",
                        text: "Connection lost".into(),
                        flow: Flow::Close,
                    };
                }
            };
            let line = String::from_utf8_lossy(&line).trim().to_string();
            if line == "*" {
                return Done::bad("Authentication cancelled");
            }
            match B64.decode(line.as_bytes()) {
                Ok(d) => d,
                Err(_) => return Done::bad("Invalid base64 in authentication response"),
            }
        }
    };
    let mut parts = response.split(|&b| b == 0);
    let (Some(authz), Some(authc), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Done::bad("Malformed PLAIN response");
    };
    if !authz.is_empty() && authz != authc {
        return Done::no("[AUTHENTICATIONFAILED] Authentication failed");
    }
    let (Ok(user), Ok(password)) = (std::str::from_utf8(authc), std::str::from_utf8(password))
    else {
        return Done::no("[AUTHENTICATIONFAILED] Authentication failed");
    };
    let (user, password) = (user.to_string(), password.to_string());
    check(imap, &user, &password).await
}

fn istring(s: &IString<'_>) -> String {
    String::from_utf8_lossy(s.as_ref()).into_owned()
}

/// ID (RFC 2971): remembers the client's name for audit records; names the server.
pub fn id(imap: &mut Imap, params: Option<Vec<(IString<'_>, NString<'_>)>>) -> Done {
    if let Some(params) = params {
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| istring(k).eq_ignore_ascii_case(key))
                .and_then(|(_, v)| v.0.as_ref().map(istring))
        };
        if let Some(name) = get("name") {
            let agent = match get("version") {
                Some(v) => format!("{name}/{v}"),
                None => name,
            };
            imap.user_agent = Some(agent.chars().take(200).collect());
        }
    }
    imap.untagged("ID (\"name\" \"mailgate\" \"vendor\" \"mailgate\")");
    Done::ok("ID completed")
}

/// ENABLE (RFC 5161): CONDSTORE, QRESYNC, UTF8=ACCEPT and IMAP4rev2.
pub fn enable(imap: &mut Imap, caps: &[CapabilityEnable<'_>]) -> Done {
    let mut enabled = Vec::new();
    for cap in caps {
        let name = cap.to_string().to_ascii_uppercase();
        match name.as_str() {
            "CONDSTORE" => imap.condstore = true,
            "QRESYNC" => {
                imap.qresync = true;
                imap.condstore = true;
            }
            "UTF8=ACCEPT" => imap.utf8 = true,
            "IMAP4REV2" => imap.rev2 = true,
            _ => continue,
        }
        enabled.push(name);
    }
    let line = format!("ENABLED {}", enabled.join(" "));
    imap.untagged(line.trim_end());
    Done::ok("ENABLE completed")
}
