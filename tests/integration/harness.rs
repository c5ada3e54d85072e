//! Starts the real `mailgate` binary on loopback port-0 listeners in a temp dir.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mailgate");

/// A running daemon; killed on drop if the test did not stop it.
pub struct Running {
    pub dir: tempfile::TempDir,
    pub child: Child,
    pub ports: BTreeMap<String, u16>,
    config: PathBuf,
}

fn spawn(cfg: &Path) -> Child {
    Command::new(BIN)
        .args(["serve", "--config"])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Config text with every TLS listener enabled on 127.0.0.1 port 0.
pub fn config_text(data_dir: &Path, extra: &str) -> String {
    let mut s = format!(
        "[server]\nhostname = \"localhost\"\ndata_dir = \"{}\"\nshutdown_grace_secs = 5\n{extra}\n",
        data_dir.display()
    );
    for (name, tls) in [
        ("smtp", "starttls"),
        ("submissions", "implicit"),
        ("imaps", "implicit"),
        ("https", "implicit"),
    ] {
        s.push_str(&format!(
            "[listeners.{name}]\naddress = \"127.0.0.1\"\nport = 0\ntls = \"{tls}\"\n"
        ));
    }
    // Sender checks never query a DNS server from a test.
    s.push_str("[smtp.sender_auth]\nresolver = \"static\"\n");
    s
}

impl Running {
    /// Starts the daemon with `config_text(dir/data, extra)` and waits for ports.json.
    pub fn start(extra: &str) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let cfg = dir.path().join("mailgate.toml");
        std::fs::write(&cfg, config_text(&data, extra)).unwrap();
        Running::start_with(dir, &cfg)
    }

    pub fn start_with(dir: tempfile::TempDir, cfg: &Path) -> Running {
        let child = spawn(cfg);
        let mut running = Running {
            dir,
            child,
            ports: BTreeMap::new(),
            config: cfg.to_path_buf(),
        };
        running.wait_ready();
        running
    }

    /// Starts the daemon again on the same config and data (after it exited or was killed).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.dir.path().join("data/run/ports.json"));
        self.child = spawn(&self.config);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let ports_file = self.dir.path().join("data/run/ports.json");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(text) = std::fs::read_to_string(&ports_file) {
                self.ports = serde_json::from_str(&text).unwrap();
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "mailgate exited during start-up: {status}: {}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("mailgate did not write {} in time", ports_file.display());
    }

    pub fn port(&self, name: &str) -> u16 {
        self.ports[name]
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("data/tls/ca.pem")
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for exit up to `limit`; `None` if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `mailgate` to completion with `args`; returns (exit code, stderr).
pub fn run_cli(args: &[&str], cwd: &Path) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `openssl s_client` against 127.0.0.1:port with extra args; (success, combined output).
pub fn s_client(port: u16, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl must be installed (the README test command installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Creates an organization for `domain` and an enabled user `local@domain` in a
/// data directory before the daemon's first start (no admin API needed).
pub fn seed_user(data: &Path, domain: &str, local: &str) {
    use mailgate::directory::{Directory, NewUser};
    std::fs::create_dir_all(data).unwrap();
    let store = mailgate::store::open_embedded(&data.join("store.sqlite")).unwrap();
    let d = Directory::open(store).unwrap();
    let alias = domain.replace('.', "-");
    let org = d.create_organization(&alias, domain).unwrap();
    let new = NewUser {
        name: local,
        display_name: local,
        password: None,
        role: None,
        first_name: None,
        last_name: None,
        hidden_from_gal: false,
    };
    let id = d.create_user(&org, new).unwrap();
    d.register_to_workmail(&org, &id, &format!("{local}@{domain}"))
        .unwrap();
}
