//! IDLE (RFC 2177): push the selected folder's changes as they happen, until DONE.

use std::time::Duration;

use crate::access::Protocol as AccessProtocol;
use crate::imap::compress::Conn;
use crate::imap::reader::{Input, Reader};
use crate::imap::session::{Done, Flow, Imap};

/// How often an idling session re-checks its login against rules and the directory.
const RECHECK: Duration = Duration::from_secs(30);

/// Waits on the store's change watch and the client's DONE at once.
pub async fn idle(imap: &mut Imap, _tag: &str, reader: &mut Reader, stream: &mut Conn) -> Done {
    imap.send_updates(true, true).await;
    imap.out.extend_from_slice(b"+ idling\r\n");
    let mut watch = imap.selected.as_ref().map(|v| v.watch.clone());
    // An IDLE can last the whole autologout period; a revoked login must not.
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.tick().await;
    loop {
        if imap.flush(stream).await.is_err() {
            return closed();
        }
        imap.release_output();
        let changed = async {
            match &mut watch {
                Some(w) => w.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            input = reader.next(stream) => match input {
                Ok(Input::Message(m)) => {
                    if m.trim_ascii().eq_ignore_ascii_case(b"DONE") {
                        return Done::ok("IDLE terminated");
                    }
                    return Done::bad("Expected DONE");
                }
                Ok(Input::TooBig { .. }) => return Done::bad("Expected DONE"),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    imap.untagged("BYE Autologout; idle for too long");
                    return closed();
                }
                _ => return closed(),
            },
            ok = changed => {
                if !ok {
                    watch = None;
                    continue;
                }
                if let Some(w) = &mut watch {
                    w.mark_unchanged();
                }
                // Nothing reaches a session whose login was revoked since its last
                // check (cheap while no rule or user changed).
                if revoked(imap) {
                    return closed();
                }
                imap.send_updates(true, true).await;
            }
            _ = recheck.tick() => {
                if revoked(imap) {
                    return closed();
                }
            }
            _ = imap.draining.cancelled() => {
                imap.untagged("BYE [UNAVAILABLE] Server shutting down");
                return closed();
            }
        }
    }
}

/// Re-checks the login; when it no longer holds, queues the BYE.
fn revoked(imap: &mut Imap) -> bool {
    let Some(login) = &mut imap.login else {
        return false;
    };
    if imap
        .ctx
        .auth
        .recheck(login, imap.peer.ip(), AccessProtocol::Imap)
    {
        return false;
    }
    imap.untagged("BYE Access revoked; closing connection");
    true
}

fn closed() -> Done {
    Done {
        status: "BAD",
        text: "Connection closing".into(),
        flow: Flow::Close,
    }
}
