//! Access micro-benchmark (not a test): access-rule decisions per second and latency
//! percentiles with the default rule and with 10 rules (goal: p99 under 2 µs), and
//! impersonation token verifications and mints per second.
//! Run by tests/load/access.sh (release build).
//!
//! Latency: one `Instant` pair around a batch of BATCH decisions, divided by BATCH, so
//! the figure is a per-decision average within a batch; percentiles are over batches.

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mailgate::access::*;

const BATCH: usize = 64;
const RUN: Duration = Duration::from_secs(3);
const MAX_BATCHES: usize = 2_000_000;
const ORG: &str = "m-0123456789abcdef0123456789abcdef";

const USERS: [&str; 4] = [
    "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa",
    "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb",
    "cccccccc-cccc-4ccc-8ccc-cccccccccccc",
    "dddddddd-dddd-4ddd-8ddd-dddddddddddd",
];

struct Directory;

impl UserResolver for Directory {
    fn resolve_user(&self, org: &str, identifier: &str) -> Option<ResolvedUser> {
        (org == ORG && USERS.contains(&identifier)).then(|| ResolvedUser {
            id: identifier.to_owned(),
            enabled: true,
        })
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn engine() -> AccessEngine {
    let backend = Arc::new(MemoryBackend::new());
    let engine = AccessEngine::open(
        backend,
        AccessLimits::default(),
        TokenKeys::generate("bench"),
    )
    .expect("open engine");
    assert!(
        engine
            .create_organization_defaults(ORG, now_ms())
            .expect("org")
    );
    engine
}

/// Ten WorkMail-shaped rules (the default rule replaced in place as the 10th, so the
/// organization holds exactly the limit of 10).
fn ten_rules() -> Vec<serde_json::Value> {
    let [a, b, c, d] = USERS;
    vec![
        serde_json::json!({"Name": "deny-blocklist", "Effect": "DENY",
            "Description": "known bad networks",
            "IpRanges": ["203.0.113.0/24", "198.51.100.0/24", "192.0.2.128/25", "2001:db8:bad::/48"]}),
        serde_json::json!({"Name": "deny-legacy-outside", "Effect": "DENY",
            "Actions": ["WindowsOutlook", "IMAP"], "NotIpRanges": ["10.0.0.0/8", "172.16.0.0/12"]}),
        serde_json::json!({"Name": "deny-contractor-ews", "Effect": "DENY",
            "Actions": ["EWS", "ActiveSync"], "UserIds": [c]}),
        serde_json::json!({"Name": "deny-smtp-nonadmins-ext", "Effect": "DENY",
            "Actions": ["SMTP"], "NotUserIds": [a], "NotIpRanges": ["10.0.0.0/8"]}),
        serde_json::json!({"Name": "allow-office", "Effect": "ALLOW",
            "IpRanges": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8"]}),
        serde_json::json!({"Name": "allow-vpn-imap", "Effect": "ALLOW",
            "IpRanges": ["100.64.0.0/10"], "Actions": ["IMAP", "SMTP", "WebMail"]}),
        serde_json::json!({"Name": "allow-admins", "Effect": "ALLOW",
            "UserIds": [a, b], "NotActions": ["WindowsOutlook"]}),
        serde_json::json!({"Name": "allow-webmail-not-contractor", "Effect": "ALLOW",
            "Actions": ["WebMail", "AutoDiscover"], "NotUserIds": [c, d]}),
        serde_json::json!({"Name": "deny-roles-outside", "Effect": "DENY",
            "NotImpersonationRoleIds": ["11111111-1111-4111-8111-111111111111"],
            "NotIpRanges": ["10.0.0.0/8"], "Actions": ["EWS"]}),
        serde_json::json!({"Name": DEFAULT_RULE_NAME, "Effect": "ALLOW",
            "Description": "catch-all for the partner network",
            "IpRanges": ["192.0.2.0/24", "2001:db8::/32"], "NotActions": ["WindowsOutlook"]}),
    ]
}

fn requests() -> Vec<(IpAddr, Protocol, &'static str)> {
    let ips = [
        "10.1.2.3",
        "203.0.113.9",
        "100.64.1.1",
        "192.0.2.10",
        "2001:db8::5",
        "::ffff:10.0.0.7",
        "8.8.8.8",
    ];
    let actions = [Protocol::Imap, Protocol::Smtp, Protocol::Ews];
    let mut out = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        for (j, act) in actions.iter().enumerate() {
            out.push((ip.parse().unwrap(), *act, USERS[(i + j) % USERS.len()]));
        }
    }
    out
}

struct Stats {
    ops: u64,
    secs: f64,
    per_op_ns: Vec<f64>,
}

impl Stats {
    fn pct(&self, p: f64) -> f64 {
        let i = ((self.per_op_ns.len() as f64 - 1.0) * p).round() as usize;
        self.per_op_ns[i]
    }
    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
}

/// Runs `op(i)` in timed batches for RUN (or MAX_BATCHES batches, whichever first).
fn bench(batch: usize, run: Duration, mut op: impl FnMut(usize)) -> Stats {
    // Warm-up.
    for i in 0..batch * 100 {
        op(i);
    }
    let mut per_op_ns = Vec::with_capacity(1 << 16);
    let mut ops = 0u64;
    let mut i = 0usize;
    let start = Instant::now();
    while start.elapsed() < run && per_op_ns.len() < MAX_BATCHES {
        let t = Instant::now();
        for _ in 0..batch {
            op(i);
            i = i.wrapping_add(1);
        }
        per_op_ns.push(t.elapsed().as_nanos() as f64 / batch as f64);
        ops += batch as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    per_op_ns.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Stats {
        ops,
        secs,
        per_op_ns,
    }
}

fn report(label: &str, s: &Stats) {
    println!(
        "{label:<34} {:>12.0} /s   p50 {:>7.3} µs   p99 {:>7.3} µs   max {:>8.3} µs   ({} ops, {} batches)",
        s.rate(),
        s.pct(0.50) / 1000.0,
        s.pct(0.99) / 1000.0,
        s.pct(1.0) / 1000.0,
        s.ops,
        s.per_op_ns.len()
    );
}

fn decisions(engine: &AccessEngine, reqs: &[(IpAddr, Protocol, &'static str)]) -> Stats {
    bench(BATCH, RUN, |i| {
        let (ip, action, user) = reqs[i % reqs.len()];
        let d = engine.evaluate(
            ORG,
            &Request {
                source_ip: ip,
                action,
                principal: Principal::User(user),
            },
        );
        black_box(d);
    })
}

fn main() {
    println!("mailgate access benchmark (release build, single thread)");
    println!(
        "latency: per-decision time = elapsed of a batch of {BATCH} calls / {BATCH}; p50/p99/max are over batches"
    );
    let reqs = requests();

    // 1. Default allow-all rule.
    let engine = engine();
    let default = decisions(&engine, &reqs);
    report("decisions, default rule (1)", &default);

    // 2. Ten rules (IP ranges, actions, users, Not-variants, a role condition).
    for rule in ten_rules() {
        let input: AccessControlRuleInput = serde_json::from_value(rule).expect("rule json");
        engine
            .put_access_control_rule(ORG, input, now_ms())
            .expect("put rule");
    }
    let n = engine.list_access_control_rules(ORG).expect("list").len();
    assert_eq!(n, 10, "expected 10 rules, got {n}");
    let (mut allows, mut denies) = (0, 0);
    for &(ip, action, user) in &reqs {
        let d = engine.evaluate(
            ORG,
            &Request {
                source_ip: ip,
                action,
                principal: Principal::User(user),
            },
        );
        if d.allowed() {
            allows += 1
        } else {
            denies += 1
        }
    }
    println!(
        "rule set: {n} rules; request mix: {} requests ({allows} allowed, {denies} denied)",
        reqs.len()
    );
    let ten = decisions(&engine, &reqs);
    report("decisions, 10 rules", &ten);
    let p99_us = ten.pct(0.99) / 1000.0;
    println!(
        "goal p99 < 2 µs with 10 rules: {} (p99 {p99_us:.3} µs)",
        if p99_us < 2.0 { "MET" } else { "NOT MET" }
    );

    // 3. Impersonation tokens.
    let input = ImpersonationRoleInput {
        name: "bench-role".into(),
        role_type: RoleType::FullAccess,
        description: Some("benchmark".into()),
        rules: vec![ImpersonationRule {
            impersonation_rule_id: "all".into(),
            name: "everyone".into(),
            description: None,
            effect: Effect::Allow,
            target_users: vec![],
            not_target_users: vec![USERS[2].into()],
        }],
    };
    let role = engine
        .create_impersonation_role(ORG, input, None, &Directory, now_ms())
        .expect("role");
    let t0 = now_ms();
    let token = engine
        .assume_impersonation_role(ORG, &role, t0)
        .expect("assume")
        .token;
    println!("token: {} bytes", token.len());
    let verify = bench(16, RUN, |_| {
        let v = engine
            .verify_token_for(ORG, black_box(&token), t0 + 1)
            .expect("verify");
        black_box(v);
    });
    report("token verifications", &verify);
    let mint = bench(16, RUN, |i| {
        let t = engine
            .assume_impersonation_role(ORG, &role, t0 + i as u64 % 1000)
            .expect("mint");
        black_box(t);
    });
    report("token mints", &mint);
}
