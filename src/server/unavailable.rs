//! The session served on a listener whose protocol is not built yet: it completes
//! TLS (so certificates and TLS versions can be checked end to end) and then says,
//! in the protocol's own words, that the service is unavailable.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;

use super::listener::{Protocol, Session};

/// A polite refusal in one protocol's grammar.
pub struct Unavailable {
    reply: &'static [u8],
}

impl Unavailable {
    /// The refusal for the named listener.
    pub fn for_listener(name: &str) -> Arc<Unavailable> {
        let reply: &'static [u8] = match name {
            "smtp" | "submission" | "submissions" => b"421 4.3.2 SMTP is not available in this mailgate build\r\n",
            "imap" | "imaps" => b"* BYE [UNAVAILABLE] IMAP is not available in this mailgate build\r\n",
            _ => b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 46\r\nConnection: close\r\n\r\nThis service is not available in this build.\n",
        };
        Arc::new(Unavailable { reply })
    }
}

impl Protocol for Unavailable {
    fn busy_reply(&self) -> &'static [u8] {
        self.reply
    }

    fn serve(self: Arc<Self>, mut session: Session) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let _ = tokio::time::timeout(session.limits.handshake_timeout(), async {
                session.stream.write_all(self.reply).await?;
                session.stream.shutdown().await
            })
            .await;
        })
    }
}
