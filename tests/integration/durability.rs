//! Durability shown by the syscalls: the `250` after DATA is written only after the
//! fsync/fdatasync that makes the message durable (strace -f).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{BIN, config_text};

fn reply(r: &mut BufReader<TcpStream>) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 {
            return all;
        }
        all.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return all;
        }
    }
}

#[test]
fn the_250_after_data_follows_the_fsync_that_covers_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("mailgate.toml");
    crate::harness::seed_user(&data, "durable.test", "keep");
    std::fs::write(&cfg, config_text(&data, "")).unwrap();
    let trace = dir.path().join("strace.txt");
    let mut child = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-s",
            "64",
            "-e",
            "trace=fsync,fdatasync,write,writev,sendto,sendmsg",
            "-o",
        ])
        .arg(&trace)
        .arg(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("strace must be installed (the README test command installs it)");
    let ports_file = data.join("run/ports.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ports_file.exists() {
        assert!(
            Instant::now() < deadline,
            "daemon did not start under strace"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ports: std::collections::BTreeMap<String, u16> =
        serde_json::from_str(&std::fs::read_to_string(&ports_file).unwrap()).unwrap();
    let stream = TcpStream::connect(("127.0.0.1", ports["smtp"])).unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    assert!(reply(&mut r).starts_with("220"));
    w.write_all(b"EHLO t\r\n").unwrap();
    assert!(reply(&mut r).contains("250 "));
    w.write_all(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<keep@durable.test>\r\nDATA\r\n")
        .unwrap();
    assert!(reply(&mut r).starts_with("250"));
    assert!(reply(&mut r).starts_with("250"), "the recipient exists");
    assert!(reply(&mut r).starts_with("354"));
    w.write_all(b"Subject: durable\r\n\r\nkeep me\r\n.\r\n")
        .unwrap();
    assert!(reply(&mut r).starts_with("250 2.0.0"));
    w.write_all(b"QUIT\r\n").unwrap();
    reply(&mut r);
    // SIGTERM the daemon itself (strace's only child), then strace ends with it.
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id())).unwrap();
    let daemon: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    unsafe { libc::kill(daemon, libc::SIGTERM) };
    let _ = child.wait();

    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let data_at = lines
        .iter()
        .position(|l| l.contains("354 End data"))
        .expect("354 in the trace");
    let ok_at = lines
        .iter()
        .position(|l| l.contains("250 2.0.0 Ok: queued as"))
        .expect("250 in the trace");
    let synced = lines[data_at..ok_at]
        .iter()
        .any(|l| l.contains("fsync(") || l.contains("fdatasync("));
    assert!(
        synced,
        "no fsync between the 354 and the 250:\n{}",
        lines[data_at..=ok_at].join("\n")
    );
}
