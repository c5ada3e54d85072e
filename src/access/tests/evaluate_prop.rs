//! Property tests: `evaluate` agrees with a brute-force reference written from the
//! decided semantics with plain set operations and `ipnet` containment, over random rule
//! sets and requests (IPv4, IPv6, IPv4-mapped; CIDR edges /0, /32, /96, /128).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use proptest::prelude::*;

use crate::access::{
    AccessControlRule, AccessControlRuleInput, Effect, IpRange, Principal, Protocol, Request, Rule,
    evaluate,
};

const USERS: [&str; 4] = [
    "user-000000000001",
    "user-000000000002",
    "user-000000000003",
    "user-000000000004",
];
const ROLES: [&str; 3] = ["role-a", "role-b", "role-c"];

// ---- the reference model -------------------------------------------------------------

/// Does CIDR `range` cover `src`? An address written as IPv4-mapped IPv6 is the IPv4
/// address; an IPv4 address lies inside an IPv6 range when its mapped form does.
fn ref_in_range(range: &str, src: IpAddr) -> bool {
    let net: IpNet = range.parse().expect("generated ranges are valid");
    let net = match net {
        IpNet::V6(n) => match n.network().to_ipv4_mapped() {
            Some(v4) if n.prefix_len() >= 96 => {
                IpNet::V4(ipnet::Ipv4Net::new(v4, n.prefix_len() - 96).expect("prefix"))
            }
            _ => IpNet::V6(n),
        },
        v4 => v4,
    };
    match (net, src.to_canonical()) {
        (IpNet::V4(n), IpAddr::V4(a)) => n.contains(&a),
        (IpNet::V6(n), IpAddr::V6(a)) => n.contains(&a),
        (IpNet::V6(n), IpAddr::V4(a)) => n.contains(&a.to_ipv6_mapped()),
        (IpNet::V4(_), IpAddr::V6(_)) => false,
    }
}

fn ref_family<T: PartialEq>(include: &[T], exclude: &[T], v: &T) -> bool {
    (include.is_empty() || include.contains(v)) && !exclude.contains(v)
}

fn ref_matches(r: &AccessControlRule, src: IpAddr, action: Protocol, who: &Who) -> bool {
    let ip_ok = (r.ip_ranges.is_empty() || r.ip_ranges.iter().any(|x| ref_in_range(x, src)))
        && !r.not_ip_ranges.iter().any(|x| ref_in_range(x, src));
    let action_ok = ref_family(&r.actions, &r.not_actions, &action);
    let who_ok = match who {
        Who::User(u) => {
            ref_family(&r.user_ids, &r.not_user_ids, u) && r.impersonation_role_ids.is_empty()
        }
        Who::Role(x) => {
            r.user_ids.is_empty()
                && ref_family(&r.impersonation_role_ids, &r.not_impersonation_role_ids, x)
        }
    };
    ip_ok && action_ok && who_ok
}

fn ref_decide(
    rules: &[AccessControlRule],
    src: IpAddr,
    action: Protocol,
    who: &Who,
) -> (Effect, Vec<String>, Option<String>) {
    let matched: Vec<&AccessControlRule> = rules
        .iter()
        .filter(|r| ref_matches(r, src, action, who))
        .collect();
    let first = |e: Effect| {
        matched
            .iter()
            .find(|r| r.effect == e)
            .map(|r| r.name.clone())
    };
    let deny = first(Effect::Deny);
    let allow = first(Effect::Allow);
    let effect = if deny.is_none() && allow.is_some() {
        Effect::Allow
    } else {
        Effect::Deny
    };
    (
        effect,
        matched.iter().map(|r| r.name.clone()).collect(),
        deny.or(allow),
    )
}

#[derive(Debug, Clone)]
enum Who {
    User(String),
    Role(String),
}

// ---- generators ----------------------------------------------------------------------

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    let bases = vec![
        0u32,
        0x0a00_0000,
        0x0a01_0203,
        0xc0a8_0101,
        0x7f00_0001,
        u32::MAX,
    ];
    prop_oneof![
        (prop::sample::select(bases), 0u32..256, any::<bool>())
            .prop_map(|(b, low, flip)| Ipv4Addr::from(if flip { b ^ low } else { b })),
        any::<u32>().prop_map(Ipv4Addr::from),
    ]
}

fn v6() -> impl Strategy<Value = Ipv6Addr> {
    let bases = vec![
        0u128,
        1,
        0x2001_0db8_0000_0000_0000_0000_0000_0001,
        0x2001_0db8_ffff_0000_0000_0000_0000_0000,
        0xfe80_0000_0000_0000_0000_0000_0000_0001,
        u128::MAX,
        0xffff_0a00_0001, // ::ffff:10.0.0.1
    ];
    prop_oneof![
        (
            prop::sample::select(bases),
            any::<u64>(),
            0u32..128,
            any::<bool>()
        )
            .prop_map(|(b, low, shift, flip)| {
                let low = u128::from(low) >> (shift % 64);
                Ipv6Addr::from(if flip { b ^ low } else { b })
            }),
        any::<u128>().prop_map(Ipv6Addr::from),
    ]
}

fn source() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        v4().prop_map(IpAddr::V4),
        v4().prop_map(|a| IpAddr::V6(a.to_ipv6_mapped())),
        v6().prop_map(IpAddr::V6),
    ]
}

fn prefix(max: u8) -> impl Strategy<Value = u8> {
    prop_oneof![Just(0u8), Just(max), 0..=max]
}

fn cidr() -> impl Strategy<Value = String> {
    prop_oneof![
        (v4(), prefix(32)).prop_map(|(a, p)| format!("{a}/{p}")),
        (v4(), prefix(32)).prop_map(|(a, p)| format!("{}/{}", a.to_ipv6_mapped(), p + 96)),
        (v6(), prefix(128)).prop_map(|(a, p)| format!("{a}/{p}")),
        (v6(), Just(96u8)).prop_map(|(a, p)| format!("{a}/{p}")),
        Just("::/0".to_owned()),
        Just("0.0.0.0/0".to_owned()),
        Just("::ffff:0:0/96".to_owned()),
    ]
}

/// Empty half the time, so rules without a family are common.
fn maybe<T: Clone + std::fmt::Debug>(
    s: impl Strategy<Value = T>,
    max: usize,
) -> impl Strategy<Value = Vec<T>> {
    prop_oneof![Just(Vec::new()), prop::collection::vec(s, 1..=max)]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop::sample::select(Protocol::ALL.to_vec())
}

fn rule_input() -> impl Strategy<Value = AccessControlRuleInput> {
    let user = || prop::sample::select(USERS.to_vec()).prop_map(str::to_owned);
    let role = || prop::sample::select(ROLES.to_vec()).prop_map(str::to_owned);
    let action = || protocol().prop_map(|p| p.as_str().to_owned());
    (
        any::<bool>(),
        (maybe(cidr(), 4), maybe(cidr(), 4)),
        (maybe(action(), 3), maybe(action(), 3)),
        (maybe(user(), 3), maybe(user(), 3)),
        (maybe(role(), 2), maybe(role(), 2)),
    )
        .prop_map(|(deny, ips, actions, users, roles)| {
            let effect = if deny { Effect::Deny } else { Effect::Allow };
            AccessControlRuleInput {
                ip_ranges: ips.0,
                not_ip_ranges: ips.1,
                actions: actions.0,
                not_actions: actions.1,
                user_ids: users.0,
                not_user_ids: users.1,
                impersonation_role_ids: roles.0,
                not_impersonation_role_ids: roles.1,
                ..AccessControlRuleInput::new("placeholder", effect)
            }
        })
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        prop::sample::select(USERS.to_vec()).prop_map(|u| Who::User(u.to_owned())),
        Just(Who::User("user-not-in-any-rule".to_owned())),
        prop::sample::select(ROLES.to_vec()).prop_map(|r| Who::Role(r.to_owned())),
        Just(Who::Role("role-unlisted".to_owned())),
    ]
}

fn compile(inputs: Vec<AccessControlRuleInput>) -> Vec<Rule> {
    inputs
        .into_iter()
        .enumerate()
        .map(|(i, mut input)| {
            input.name = format!("rule-{i}");
            Rule::new(AccessControlRule::from_input(input, 0, 0).expect("valid")).expect("valid")
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn evaluate_matches_reference(
        inputs in prop::collection::vec(rule_input(), 0..=10),
        src in source(),
        action in protocol(),
        who in who(),
    ) {
        let rules = compile(inputs);
        let principal = match &who {
            Who::User(u) => Principal::User(u),
            Who::Role(r) => Principal::Role(r),
        };
        let decision = evaluate(&rules, &Request { source_ip: src, action, principal });
        let specs: Vec<AccessControlRule> = rules.iter().map(|r| r.spec().clone()).collect();
        let (effect, matched, deciding) = ref_decide(&specs, src, action, &who);
        prop_assert_eq!(decision.effect, effect);
        prop_assert_eq!(decision.matched_rules, matched);
        prop_assert_eq!(decision.deciding_rule, deciding);
    }

    /// The IPv4 and IPv4-mapped spellings of one source always get the same decision.
    #[test]
    fn mapped_and_plain_ipv4_decide_alike(
        inputs in prop::collection::vec(rule_input(), 0..=10),
        a in v4(),
        action in protocol(),
    ) {
        let rules = compile(inputs);
        let decide = |ip: IpAddr| evaluate(&rules, &Request {
            source_ip: ip,
            action,
            principal: Principal::User(USERS[0]),
        });
        prop_assert_eq!(decide(IpAddr::V4(a)), decide(IpAddr::V6(a.to_ipv6_mapped())));
    }

    /// Single-range containment agrees with the reference, including every prefix edge.
    #[test]
    fn range_contains_matches_reference(range in cidr(), src in source()) {
        let parsed = IpRange::parse(&range).expect("generated ranges parse");
        prop_assert_eq!(
            parsed.contains_key(crate::access::ip_key(src)),
            ref_in_range(&range, src)
        );
    }

    /// The CIDR parser reads network input: it never panics, and whatever it accepts is
    /// also a valid CIDR to ipnet.
    #[test]
    fn range_parser_total(text in "[0-9a-fA-F:./]{0,48}") {
        if IpRange::parse(&text).is_some() {
            prop_assert!(text.parse::<IpNet>().is_ok());
        }
    }
}
