//! TLS 1.2 and 1.3 succeed, TLS 1.1 fails, on every implicit-TLS listener;
//! SIGHUP swaps certificates for the next handshake.

use crate::harness::{BIN, Running, s_client};

fn ca_args(ca: &std::path::Path) -> Vec<String> {
    vec![
        "-CAfile".into(),
        ca.display().to_string(),
        "-verify_return_error".into(),
        "-servername".into(),
        "localhost".into(),
    ]
}

#[test]
fn tls_1_2_and_1_3_succeed_and_1_1_fails() {
    let d = Running::start("");
    let ca = ca_args(&d.ca());
    let ca: Vec<&str> = ca.iter().map(String::as_str).collect();
    for listener in ["imaps", "submissions", "https"] {
        let port = d.port(listener);
        let (ok, out) = s_client(port, &[&ca[..], &["-tls1_2"]].concat());
        assert!(
            ok && out.contains("TLSv1.2") && out.contains("Verify return code: 0 (ok)"),
            "{listener} TLS 1.2: {out}"
        );
        let (ok, out) = s_client(port, &[&ca[..], &["-tls1_3"]].concat());
        assert!(
            ok && out.contains("TLSv1.3") && out.contains("Verify return code: 0 (ok)"),
            "{listener} TLS 1.3: {out}"
        );
        // SECLEVEL=0 lets OpenSSL 3 really offer TLS 1.1, so the refusal is the server's.
        let (ok, out) = s_client(port, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]);
        assert!(!ok, "{listener} accepted TLS 1.1: {out}");
        // The server answers the TLS 1.1 hello with an alert (rustls sends
        // handshake_failure); "no protocols available" would mean the client never tried.
        assert!(
            out.contains("alert") && !out.contains("no protocols available"),
            "{listener}: TLS 1.1 must be refused by the server: {out}"
        );
    }
    // The implicit-TLS IMAP listener answers in IMAP once TLS is up.
    // (-quiet implies -ign_eof, so the client logs out rather than closing stdin.)
    let mut child = std::process::Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(format!("127.0.0.1:{}", d.port("imaps")))
        .args(&ca)
        .arg("-quiet")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"a LOGOUT\r\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.contains("* OK [CAPABILITY ") && out.contains("* BYE"),
        "{out}"
    );
}

#[test]
fn sighup_reloads_certificates_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let gen_cert = |host: &str, out: &std::path::Path| {
        let st = std::process::Command::new(BIN)
            .args(["gen-cert", "--out"])
            .arg(out)
            .args(["--host", host])
            .output()
            .unwrap();
        assert!(st.status.success());
    };
    gen_cert("first.test", &certs);
    let extra = format!(
        "[[tls.certificates]]\ncert = \"{}\"\nkey = \"{}\"\n",
        certs.join("cert.pem").display(),
        certs.join("key.pem").display()
    );
    let cfg = dir.path().join("mailgate.toml");
    std::fs::write(
        &cfg,
        crate::harness::config_text(&dir.path().join("data"), &extra),
    )
    .unwrap();
    let d = Running::start_with(dir, &cfg);
    let port = d.port("imaps");
    let (_, out) = s_client(port, &[]);
    assert!(out.contains("CN = first.test"), "{out}");

    let next = d.dir.path().join("next");
    gen_cert("second.test", &next);
    for f in ["cert.pem", "key.pem"] {
        std::fs::copy(next.join(f), certs.join(f)).unwrap();
    }
    // A session open across the reload keeps working.
    use std::io::{BufRead, Write};
    let tcp = std::net::TcpStream::connect(("127.0.0.1", d.port("smtp"))).unwrap();
    let mut live = std::io::BufReader::new(tcp.try_clone().unwrap());
    let mut line = String::new();
    live.read_line(&mut line).unwrap();
    assert!(line.starts_with("220"), "{line}");
    d.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (_, out) = s_client(port, &[]);
        if out.contains("CN = second.test") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "new certificate not served after SIGHUP: {out}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (&tcp).write_all(b"NOOP\r\n").unwrap();
    line.clear();
    live.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("250"),
        "the connection survived the reload: {line}"
    );
    // A reload with a broken key keeps the working certificate.
    std::fs::write(certs.join("key.pem"), "garbage").unwrap();
    d.signal(libc::SIGHUP);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (ok, out) = s_client(port, &[]);
    assert!(ok && out.contains("CN = second.test"), "{out}");
}
