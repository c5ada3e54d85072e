//! The PROXY protocol (HAProxy's v1 text and v2 binary headers) on listeners behind
//! a load balancer: who may send the header, reading exactly its bytes off the
//! socket before TLS and before any greeting, and what address it declares.
//!
//! Parsing is the `ppp` crate's; this module owns the policy and the I/O. The
//! header is taken with `peek` and then consumed with exact reads, so the bytes
//! after it (a TLS ClientHello, an SMTP command) stay in the socket untouched for
//! whatever reads next. Postfix's `smtpd_upstream_proxy_protocol` and HAProxy's
//! `accept-proxy` are the model: on a marked listener the header is required, and a
//! connection without one, or from an address not in `proxy_from`, is closed.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use ppp::{PartialResult, v1, v2};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The longest v1 header, CRLF included (the specification's 107 bytes).
pub const V1_MAX: usize = 107;
/// The v2 signature, version/command, family and length bytes before the addresses.
const V2_FIXED: usize = 16;
/// How much the first look at the socket takes: every v1 header and the usual v2
/// ones (addresses plus a few TLVs) in one peek.
const FIRST_PEEK: usize = 256;

/// Which peers of a marked listener may send the header (`listeners.NAME.proxy_from`).
#[derive(Debug, Clone)]
pub struct ProxyPolicy {
    from: Vec<IpNet>,
}

impl ProxyPolicy {
    /// The load balancers' ranges; the config guarantees at least one.
    pub fn new(from: Vec<IpNet>) -> ProxyPolicy {
        ProxyPolicy { from }
    }

    /// Whether `ip` is a configured load balancer (IPv4-mapped IPv6 peers of a
    /// dual-stack socket count as their IPv4 address).
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.from.iter().any(|n| n.contains(&ip))
    }
}

/// What a complete header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    /// A proxied TCP connection: the client and the address it connected to.
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// The proxy speaking for itself (v2 LOCAL, e.g. health checks), or a client
    /// it cannot name (v1 UNKNOWN, v2 AF_UNSPEC or AF_UNIX): the connection's own
    /// addresses stand.
    Own,
}

/// The outcome of looking at the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A valid header of `len` bytes starts the input; the rest is the client's.
    Complete { len: usize, declared: Declared },
    /// Everything so far is the start of a header; at most `upto` bytes in all
    /// can make it complete.
    Incomplete { upto: usize },
    /// Not a valid header, whatever follows.
    Invalid(String),
}

/// Looks at the start of a connection on a PROXY listener.
pub fn parse(input: &[u8]) -> Parsed {
    // The v2 signature starts with CRLF, which no v1 header does: the first bytes
    // say which parser speaks (and whose error is reported).
    let is_v2 = input.starts_with(v2::PROTOCOL_PREFIX) || v2::PROTOCOL_PREFIX.starts_with(input);
    if is_v2 {
        parse_v2(input)
    } else {
        parse_v1(input)
    }
}

/// A v1 line is judged once its CRLF is in: before that, only whether it can
/// still become one (ppp's parser would call some cut-off lines invalid, e.g. one
/// ending in the space before a port).
fn parse_v1(input: &[u8]) -> Parsed {
    const START: &[u8] = b"PROXY ";
    let invalid = |why: &str| Parsed::Invalid(format!("v1 header: {why}"));
    let Some(cr) = input.iter().position(|&b| b == b'\r') else {
        if !(input.starts_with(START) || START.starts_with(input)) {
            return invalid("does not start with \"PROXY \"");
        }
        if input.len() >= V1_MAX {
            return invalid("longer than 107 bytes");
        }
        if !input
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b" .:".contains(b))
        {
            return invalid("a byte that no address, port or protocol has");
        }
        return Parsed::Incomplete { upto: V1_MAX };
    };
    if cr + 2 > V1_MAX {
        return invalid("longer than 107 bytes");
    }
    if cr + 1 == input.len() {
        return Parsed::Incomplete { upto: V1_MAX };
    }
    match v1::Header::try_from(&input[..cr + 2]) {
        Ok(h) => Parsed::Complete {
            len: h.header.len(),
            declared: match h.addresses {
                v1::Addresses::Tcp4(a) => Declared::Proxied {
                    source: (a.source_address, a.source_port).into(),
                    destination: (a.destination_address, a.destination_port).into(),
                },
                v1::Addresses::Tcp6(a) => Declared::Proxied {
                    source: (a.source_address, a.source_port).into(),
                    destination: (a.destination_address, a.destination_port).into(),
                },
                v1::Addresses::Unknown => Declared::Own,
            },
        },
        Err(e) => invalid(&e.to_string()),
    }
}

fn parse_v2(input: &[u8]) -> Parsed {
    let result = v2::Header::try_from(input);
    if result.is_incomplete() {
        let upto = match input.get(14..16) {
            Some(len) => V2_FIXED + usize::from(u16::from_be_bytes([len[0], len[1]])),
            None => V2_FIXED,
        };
        return Parsed::Incomplete { upto };
    }
    let h = match result {
        Ok(h) => h,
        Err(e) => return Parsed::Invalid(format!("v2 header: {e}")),
    };
    let declared = match (h.command, h.protocol, h.addresses) {
        (v2::Command::Local, _, _) => Declared::Own,
        (_, v2::Protocol::Datagram, _) => {
            return Parsed::Invalid("v2 header declares UDP on a TCP listener".into());
        }
        (_, _, v2::Addresses::IPv4(a)) => Declared::Proxied {
            source: (a.source_address, a.source_port).into(),
            destination: (a.destination_address, a.destination_port).into(),
        },
        (_, _, v2::Addresses::IPv6(a)) => Declared::Proxied {
            source: (a.source_address, a.source_port).into(),
            destination: (a.destination_address, a.destination_port).into(),
        },
        (_, _, v2::Addresses::Unspecified | v2::Addresses::Unix(_)) => Declared::Own,
    };
    Parsed::Complete {
        len: h.len(),
        declared,
    }
}

/// Why a connection on a PROXY listener was closed before its session.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The peer closed before a complete header.
    #[error("connection closed before a complete PROXY header")]
    Closed,
    /// Not a PROXY header, or a broken one.
    #[error("bad PROXY header: {0}")]
    Invalid(String),
    /// The socket failed.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one PROXY header off `tcp`, consuming exactly its bytes. The caller
/// bounds the wait (a stalled header never completes on its own).
pub async fn read_header(tcp: &mut TcpStream) -> Result<Declared, HeaderError> {
    // Bytes already consumed: all of them a proper prefix of the header.
    let mut taken: Vec<u8> = Vec::new();
    let mut window = vec![0u8; FIRST_PEEK];
    loop {
        let n = tcp.peek(&mut window).await?;
        if n == 0 {
            return Err(HeaderError::Closed);
        }
        let mut seen = taken.clone();
        seen.extend_from_slice(&window[..n]);
        match parse(&seen) {
            Parsed::Complete { len, declared } => {
                let rest = len - taken.len();
                tcp.read_exact(&mut window[..rest]).await?;
                return Ok(declared);
            }
            Parsed::Invalid(why) => return Err(HeaderError::Invalid(why)),
            Parsed::Incomplete { upto } => {
                // All of it belongs to the header: take it, so the next peek waits
                // for new bytes instead of returning these again.
                tcp.read_exact(&mut window[..n]).await?;
                taken.extend_from_slice(&window[..n]);
                window.resize(upto.saturating_sub(taken.len()).max(1), 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// A v2 header: `command` 0x20 LOCAL / 0x21 PROXY, `family` byte, address block.
    fn v2(command: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
        let mut h = v2::PROTOCOL_PREFIX.to_vec();
        h.push(command);
        h.push(family);
        h.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
        h.extend_from_slice(addresses);
        h
    }

    fn v2_tcp4(src: [u8; 4], sport: u16) -> Vec<u8> {
        let mut a = src.to_vec();
        a.extend_from_slice(&[10, 0, 0, 1]);
        a.extend_from_slice(&sport.to_be_bytes());
        a.extend_from_slice(&993u16.to_be_bytes());
        v2(0x21, 0x11, &a)
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_tcp4_and_tcp6_name_the_client_and_leave_what_follows() {
        let input = b"PROXY TCP4 203.0.113.7 10.0.0.1 40000 25\r\nEHLO x\r\n";
        assert_eq!(
            parse(input),
            Parsed::Complete {
                len: 42,
                declared: Declared::Proxied {
                    source: sa("203.0.113.7:40000"),
                    destination: sa("10.0.0.1:25"),
                }
            }
        );
        assert_eq!(&input[42..], b"EHLO x\r\n");
        let input = b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 993\r\n\x16\x03\x01";
        let Parsed::Complete { len, declared } = parse(input) else {
            panic!("{:?}", parse(input));
        };
        assert_eq!(&input[len..], b"\x16\x03\x01");
        assert_eq!(
            declared,
            Declared::Proxied {
                source: sa("[2001:db8::7]:40000"),
                destination: sa("[2001:db8::1]:993"),
            }
        );
    }

    #[test]
    fn v1_unknown_keeps_the_own_address() {
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\nA1 NOOP\r\n"),
            Parsed::Complete {
                len: 15,
                declared: Declared::Own
            }
        );
        let with_junk = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
        assert!(matches!(
            parse(with_junk),
            Parsed::Complete {
                len: 35,
                declared: Declared::Own
            }
        ));
    }

    #[test]
    fn v2_ipv4_ipv6_local_and_unspec() {
        let mut h = v2_tcp4([198, 51, 100, 9], 5555);
        let len = h.len();
        h.extend_from_slice(b"rest");
        assert_eq!(
            parse(&h),
            Parsed::Complete {
                len,
                declared: Declared::Proxied {
                    source: sa("198.51.100.9:5555"),
                    destination: sa("10.0.0.1:993"),
                }
            }
        );
        let mut a6 = Vec::new();
        a6.extend_from_slice(
            &"2001:db8::9"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        a6.extend_from_slice(
            &"2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        a6.extend_from_slice(&[0x9c, 0x40, 0x00, 0x19]);
        // A TLV after the addresses (e.g. AWS's VPC endpoint id) is part of the header.
        a6.extend_from_slice(&[0xEA, 0x00, 0x03, b'v', b'p', b'c']);
        let h = v2(0x21, 0x21, &a6);
        assert_eq!(
            parse(&h),
            Parsed::Complete {
                len: 16 + 36 + 6,
                declared: Declared::Proxied {
                    source: sa("[2001:db8::9]:40000"),
                    destination: sa("[2001:db8::1]:25"),
                }
            }
        );
        // LOCAL (a health check) keeps the proxy's address even with addresses given.
        let mut local = v2_tcp4([198, 51, 100, 9], 5555);
        local[12] = 0x20;
        assert!(matches!(
            parse(&local),
            Parsed::Complete {
                declared: Declared::Own,
                ..
            }
        ));
        let unspec = v2(0x21, 0x00, &[]);
        assert_eq!(
            parse(&unspec),
            Parsed::Complete {
                len: 16,
                declared: Declared::Own
            }
        );
    }

    #[test]
    fn partial_headers_are_incomplete_with_a_bound() {
        assert_eq!(parse(b""), Parsed::Incomplete { upto: 16 });
        for prefix in [
            &b"P"[..],
            b"PROXY",
            b"PROXY TCP",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 40000",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 40000 25\r",
        ] {
            assert_eq!(
                parse(prefix),
                Parsed::Incomplete { upto: V1_MAX },
                "{prefix:?}"
            );
        }
        let h = v2_tcp4([198, 51, 100, 9], 5555);
        assert_eq!(parse(&h[..5]), Parsed::Incomplete { upto: 16 });
        assert_eq!(parse(&h[..13]), Parsed::Incomplete { upto: 16 });
        assert_eq!(parse(&h[..20]), Parsed::Incomplete { upto: 28 });
    }

    #[test]
    fn bad_headers_are_invalid() {
        let too_long = format!("PROXY TCP4 {}\r\n", "1".repeat(100));
        let no_crlf_in_time = format!("PROXY TCP6 {}", "f".repeat(120));
        let mut bad_version = v2_tcp4([1, 2, 3, 4], 1);
        bad_version[12] = 0x11;
        let mut bad_command = v2_tcp4([1, 2, 3, 4], 1);
        bad_command[12] = 0x2F;
        let short_addresses = v2(0x21, 0x11, &[1, 2, 3, 4]);
        let udp = {
            let mut h = v2_tcp4([1, 2, 3, 4], 1);
            h[13] = 0x12;
            h
        };
        for bad in [
            &b"EHLO client.example\r\n"[..],
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 40000 25\n",
            b"PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 040000 25\r\n",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 70000 25\r\n",
            b"PROXY UDP4 203.0.113.7 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 1 2 3\r\n",
            too_long.as_bytes(),
            no_crlf_in_time.as_bytes(),
            &bad_version,
            &bad_command,
            &short_addresses,
            &udp,
        ] {
            assert!(
                matches!(parse(bad), Parsed::Invalid(_)),
                "{bad:?}: {:?}",
                parse(bad)
            );
        }
    }

    #[test]
    fn policy_matches_ranges_and_mapped_addresses() {
        let p = ProxyPolicy::new(vec![
            "10.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ]);
        assert!(p.allows("10.9.8.7".parse().unwrap()));
        assert!(p.allows("::ffff:10.9.8.7".parse().unwrap()));
        assert!(p.allows("::1".parse().unwrap()));
        assert!(!p.allows("11.0.0.1".parse().unwrap()));
        assert!(!p.allows("127.0.0.1".parse().unwrap()));
    }

    proptest::proptest! {
        /// Any bytes: no panic, and a complete header never claims more than it saw.
        #[test]
        fn any_input_is_judged_without_panic(input in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Parsed::Complete { len, .. } = parse(&input) {
                proptest::prop_assert!(len <= input.len());
            }
        }

        /// A valid header followed by anything: exactly the header is taken, and
        /// every proper prefix of it is incomplete (never invalid, never complete).
        #[test]
        fn a_header_is_found_whatever_follows(
            src in proptest::num::u32::ANY,
            sport in proptest::num::u16::ANY,
            binary in proptest::bool::ANY,
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let ip = std::net::Ipv4Addr::from(src);
            let (header, dport) = if binary {
                (v2_tcp4(ip.octets(), sport), 993)
            } else {
                (format!("PROXY TCP4 {ip} 10.0.0.1 {sport} 25\r\n").into_bytes(), 25)
            };
            for cut in 0..header.len() {
                proptest::prop_assert!(matches!(parse(&header[..cut]), Parsed::Incomplete { .. }), "cut {}", cut);
            }
            let input = [header.clone(), tail].concat();
            let want = Parsed::Complete {
                len: header.len(),
                declared: Declared::Proxied {
                    source: (ip, sport).into(),
                    destination: (std::net::Ipv4Addr::new(10, 0, 0, 1), dport).into(),
                },
            };
            proptest::prop_assert_eq!(parse(&input), want);
        }
    }

    /// A connected pair on loopback: (client, server side).
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        (c, s)
    }

    #[tokio::test]
    async fn reads_exactly_the_header_even_in_pieces() {
        let (mut c, mut s) = pair().await;
        let mut h = v2_tcp4([203, 0, 113, 7], 40000);
        h.extend_from_slice(b"A1 NOOP\r\n");
        let reader = tokio::spawn(async move {
            let d = read_header(&mut s).await.unwrap();
            let mut rest = [0u8; 9];
            s.read_exact(&mut rest).await.unwrap();
            (d, rest)
        });
        // One byte at a time, with pauses: every split point is a partial header.
        for b in &h {
            c.write_all(&[*b]).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let (d, rest) = reader.await.unwrap();
        assert_eq!(
            d,
            Declared::Proxied {
                source: sa("203.0.113.7:40000"),
                destination: sa("10.0.0.1:993"),
            }
        );
        assert_eq!(
            &rest, b"A1 NOOP\r\n",
            "the bytes after the header are untouched"
        );
    }

    #[tokio::test]
    async fn reads_a_v1_header_sent_with_data_behind_it() {
        let (mut c, mut s) = pair().await;
        c.write_all(b"PROXY TCP4 192.0.2.1 10.0.0.1 1234 25\r\nQUIT\r\n")
            .await
            .unwrap();
        let d = read_header(&mut s).await.unwrap();
        assert_eq!(
            d,
            Declared::Proxied {
                source: sa("192.0.2.1:1234"),
                destination: sa("10.0.0.1:25"),
            }
        );
        let mut rest = [0u8; 6];
        s.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"QUIT\r\n");
    }

    #[tokio::test]
    async fn garbage_and_early_close_are_errors() {
        let (mut c, mut s) = pair().await;
        c.write_all(b"EHLO x\r\n").await.unwrap();
        assert!(matches!(
            read_header(&mut s).await,
            Err(HeaderError::Invalid(_))
        ));
        let (mut c, mut s) = pair().await;
        c.write_all(b"PROXY TCP4 1.2.3.4").await.unwrap();
        drop(c);
        assert!(matches!(
            read_header(&mut s).await,
            Err(HeaderError::Closed)
        ));
        // An oversized v1 line is refused at 107 bytes, before its end arrives.
        let (mut c, mut s) = pair().await;
        c.write_all(format!("PROXY TCP4 {}", "9".repeat(200)).as_bytes())
            .await
            .unwrap();
        assert!(matches!(
            read_header(&mut s).await,
            Err(HeaderError::Invalid(_))
        ));
    }
}
