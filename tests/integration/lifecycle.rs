//! Start-up refusals (exit 78, one line naming what and where) and clean shutdown.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{Running, config_text, run_cli};

fn serve_with(config: &str, dir: &Path) -> (i32, String) {
    let cfg = dir.join("mailgate.toml");
    std::fs::write(&cfg, config).unwrap();
    run_cli(&["serve", "--config", cfg.to_str().unwrap()], dir)
}

#[test]
fn sigterm_stops_cleanly_within_the_deadline() {
    let mut d = Running::start("");
    // A client connected during shutdown does not hold it past the grace period.
    let _idle = std::net::TcpStream::connect(("127.0.0.1", d.port("smtp"))).unwrap();
    let t0 = Instant::now();
    d.signal(libc::SIGTERM);
    let status = d
        .wait_exit(Duration::from_secs(10))
        .expect("mailgate did not stop after SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", d.stderr());
    assert!(
        t0.elapsed() < Duration::from_secs(6),
        "took {:?}",
        t0.elapsed()
    );
    assert!(d.stderr().contains("stopped"));
}

#[test]
fn check_config_accepts_the_example_and_names_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/mailgate.toml");
    let (code, _) = run_cli(&["check-config", "--config", example], dir.path());
    assert_eq!(code, 0);

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nhostname = \"x\"\ndata_dir = \"d\"\n[limits]\nmax_conections = 3\n",
    )
    .unwrap();
    let (code, err) = run_cli(
        &["check-config", "--config", bad.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code, 78);
    assert!(
        err.contains("limits.max_conections") && err.contains("bad.toml:5"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let (code, err) = run_cli(&["serve", "--config", bad.to_str().unwrap()], dir.path());
    assert_eq!(code, 78, "{err}");

    let (code, err) = run_cli(
        &["check-config", "--config", "/nonexistent/m.toml"],
        dir.path(),
    );
    assert_eq!(code, 78);
    assert!(err.contains("/nonexistent/m.toml"), "{err}");
}

/// With `backend = "postgres"`, check-config also reaches the database: an
/// unreachable one is a refusal (78) in one line naming the URL; the test
/// server (tests/pg.sh), when there is one, passes.
#[test]
fn check_config_reaches_a_postgres_store() {
    let dir = tempfile::tempdir().unwrap();
    let example = include_str!("../../config/mailgate.toml");
    let with_url = |url: &str| {
        let cfg = dir.path().join("pg.toml");
        let text = example.replace(
            "backend = \"sqlite\"",
            &format!("backend = \"postgres\"\nurl = \"{url}\""),
        );
        std::fs::write(&cfg, text).unwrap();
        run_cli(
            &["check-config", "--config", cfg.to_str().unwrap()],
            dir.path(),
        )
    };
    let (code, err) = with_url("postgres://mg:pw@127.0.0.1:1/mail?sslmode=disable");
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("cannot connect") && err.contains("postgres://mg@127.0.0.1:1/mail"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    // serve refuses it too (today at postgres::MISSING_PARTS, later because the
    // server is unreachable), exit 78, naming the key.
    let cfg = dir.path().join("pg.toml");
    let (code, err) = run_cli(&["serve", "--config", cfg.to_str().unwrap()], dir.path());
    assert_eq!(code, 78, "{err}");
    let last = err.trim().lines().last().unwrap_or_default();
    assert!(last.contains("store.url"), "{err}");
    if let Ok(url) = std::env::var("MAILGATE_TEST_POSTGRES") {
        let (code, err) = with_url(&url);
        assert_eq!(code, 0, "{err}");
    }
}

#[test]
fn missing_certificate_is_refused_with_exit_78() {
    let dir = tempfile::tempdir().unwrap();
    let extra =
        "[[tls.certificates]]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n";
    let (code, err) = serve_with(&config_text(&dir.path().join("data"), extra), dir.path());
    assert_eq!(code, 78, "{err}");
    let last = err.trim().lines().last().unwrap();
    assert!(
        last.starts_with("mailgate: tls.certificates[0].cert (/nonexistent/cert.pem)"),
        "{err}"
    );
}

#[test]
fn port_in_use_is_refused_with_exit_78() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let text = config_text(&dir.path().join("data"), "").replacen(
        "port = 0",
        &format!("port = {port}"),
        1,
    );
    let (code, err) = serve_with(&text, dir.path());
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains(&format!("listeners.smtp (127.0.0.1:{port}): cannot listen")),
        "{err}"
    );
}

#[test]
fn corrupt_store_is_refused_and_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let junk = vec![0x5Au8; 4096];
    std::fs::write(data.join("store.sqlite"), &junk).unwrap();
    let (code, err) = serve_with(&config_text(&data, ""), dir.path());
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("store.path") && err.contains("corrupt"),
        "{err}"
    );
    assert_eq!(std::fs::read(data.join("store.sqlite")).unwrap(), junk);
}

/// Mounts a tmpfs (CI runs as root); `None` where mounting is not permitted.
fn tmpfs(dir: &Path, opts: &str) -> Option<TmpfsGuard> {
    std::fs::create_dir_all(dir).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
        .arg(dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then(|| TmpfsGuard(dir.to_path_buf()))
}

struct TmpfsGuard(std::path::PathBuf);
impl Drop for TmpfsGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn read_only_data_dir_is_refused_with_exit_78() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let Some(_m) = tmpfs(&data, "ro,size=1m") else {
        assert!(!is_root(), "root must be able to mount a tmpfs");
        eprintln!("skipped: not root, cannot mount a read-only tmpfs");
        return;
    };
    let (code, err) = serve_with(&config_text(&data, ""), dir.path());
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("server.data_dir") && err.contains("Read-only file system"),
        "{err}"
    );
}

#[test]
fn full_data_dir_is_refused_with_exit_78() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let Some(_m) = tmpfs(&data, "size=1m") else {
        assert!(!is_root(), "root must be able to mount a tmpfs");
        eprintln!("skipped: not root, cannot mount a tmpfs");
        return;
    };
    std::fs::create_dir_all(data.join("run")).unwrap();
    std::fs::create_dir_all(data.join("tls")).unwrap();
    // Fill it to the last byte.
    let mut f = std::fs::File::create(data.join("filler")).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    let (code, err) = serve_with(&config_text(&data, ""), dir.path());
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("server.data_dir") && err.contains("No space left"),
        "{err}"
    );
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/mailgate.service"
    ))
    .unwrap();
    // verify checks that ExecStart is executable: point it at the binary under test.
    let unit = unit.replace("/usr/local/bin/mailgate", crate::harness::BIN);
    let path = dir.path().join("mailgate.service");
    std::fs::write(&path, unit).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze must be installed (the README test command installs systemd)");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !text.contains("mailgate.service:"),
        "{text}"
    );
}

#[test]
fn sd_notify_ready_reloading_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("mailgate.toml");
    std::fs::write(&cfg, config_text(&data, "")).unwrap();
    let mut child = std::process::Command::new(crate::harness::BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &sock_path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let recv = || {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("no sd_notify message in time");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let msg = recv();
    assert!(msg.contains("READY=1"), "{msg}");
    assert!(
        data.join("run/ports.json").exists(),
        "ports.json is written before READY=1"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let msg = recv();
    assert!(
        msg.contains("RELOADING=1") && msg.contains("MONOTONIC_USEC="),
        "{msg}"
    );
    assert!(recv().contains("READY=1"));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(recv().contains("STOPPING=1"));
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn sd_notify_watchdog_pings_when_systemd_asks() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let cfg = dir.path().join("mailgate.toml");
    std::fs::write(&cfg, config_text(&dir.path().join("data"), "")).unwrap();
    // systemd names the watched pid; exec keeps the shell's pid for the daemon.
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "WATCHDOG_PID=$$ exec {} serve --config {}",
            crate::harness::BIN,
            cfg.display()
        ))
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "200000")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut pings = 0;
    let t0 = Instant::now();
    while pings < 3 && t0.elapsed() < Duration::from_secs(5) {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("sd_notify message");
        if String::from_utf8_lossy(&buf[..n]).contains("WATCHDOG=1") {
            pings += 1;
        }
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(pings, 3, "WATCHDOG=1 at half the 200 ms interval");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}
