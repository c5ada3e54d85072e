//! Postfix's smtp-sink as the smarthost: a real, independent SMTP server. Skipped,
//! with the reason printed, when smtp-sink is not installed (CI has no Postfix).
//! Point `SMTP_SINK` at the binary to use one unpacked from the Debian package
//! (`apt-get download postfix && dpkg-deb -x postfix_*.deb DIR`); its libraries are
//! then found in `DIR/usr/lib/postfix`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use super::*;

/// The smtp-sink binary, if there is one.
fn smtp_sink() -> Option<PathBuf> {
    let candidates = std::env::var_os("SMTP_SINK")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink"].map(PathBuf::from));
    candidates.into_iter().find(|p| p.is_file())
}

/// Runs smtp-sink on a free loopback port with `extra` options, dumping each
/// transaction into `dump`. The child dies with the returned handle.
async fn start_sink(
    bin: &std::path::Path,
    dump: &std::path::Path,
    extra: &[&str],
) -> (u16, tokio::process::Child) {
    let port = closed_port().await;
    let mut cmd = tokio::process::Command::new(bin);
    // An unpacked package: DIR/usr/sbin/smtp-sink needs DIR/usr/lib/postfix.
    if let Some(lib) = bin
        .parent()
        .and_then(|p| p.parent())
        .map(|usr| usr.join("lib/postfix"))
        .filter(|l| l.is_dir())
    {
        cmd.env("LD_LIBRARY_PATH", lib);
    }
    // As root, smtp-sink drops to the "postfix" user unless told otherwise.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if root {
        cmd.args(["-u", "nobody"]);
    }
    cmd.args(extra)
        .arg("-d")
        .arg(dump.join("m."))
        .arg(format!("127.0.0.1:{port}"))
        .arg("10")
        .kill_on_drop(true);
    let child = cmd.spawn().unwrap();
    until("smtp-sink to listen", async || {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    (port, child)
}

fn dump_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

fn dumped(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter(|t| t.contains("X-Rcpt-Args"))
        .collect()
}

#[tokio::test]
async fn smtp_sink_takes_the_message_and_a_5xx_sink_bounces_it() {
    let Some(bin) = smtp_sink() else {
        eprintln!("skipping: smtp-sink not found (install postfix or set SMTP_SINK)");
        return;
    };
    let f = fixture_with_relay().await;
    let dump = dump_dir();
    let (port, _sink) = start_sink(&bin, dump.path(), &[]).await;
    let (stop, task) = start_runner(&f, port);
    submit(&f).await;
    until("OUTGOING_EMAIL_SENT", async || {
        !events_named(&f, "OUTGOING_EMAIL_SENT").is_empty()
    })
    .await;
    until("an empty queue", async || queue_len(&f).await == 0).await;
    until("the dump file", async || !dumped(dump.path()).is_empty()).await;
    let got = dumped(dump.path()).remove(0);
    assert!(got.contains("X-Mail-Args: <alice@acme.test>"), "{got}");
    assert!(got.contains("X-Rcpt-Args: <carol@remote.test>"), "{got}");
    assert!(got.contains("Received: from client.test"), "{got}");
    assert!(
        got.contains("Subject: offsite") && got.contains("\n.dotted line\n"),
        "{got}"
    );
    stop.cancel();
    task.await.unwrap();

    let f = fixture_with_relay().await;
    let dump = dump_dir();
    let (port, _sink) = start_sink(&bin, dump.path(), &["-f", "RCPT"]).await;
    let (stop, task) = start_runner(&f, port);
    submit(&f).await;
    until("OUTGOING_EMAIL_BOUNCED", async || {
        !events_named(&f, "OUTGOING_EMAIL_BOUNCED").is_empty()
    })
    .await;
    until("an empty queue", async || queue_len(&f).await == 0).await;
    let dsn = inbox(&f, &f.alice, FolderKind::Inbox).await;
    assert_eq!(dsn.len(), 1);
    assert!(
        String::from_utf8_lossy(&dsn[0]).contains("Final-Recipient: rfc822; carol@remote.test")
    );
    stop.cancel();
    task.await.unwrap();
}
