//! Where clients reach this server, as Autodiscover tells them: the public base
//! URL (from `[ews] public_url`, else the request's validated `Host` header, else
//! `server.hostname` and the https listener's port) and the IMAP and SMTP
//! submission listeners with their TLS mode. Pure: built from the config once,
//! asked per request.

use crate::config::{Config, ListenerConfig, TlsMode};

/// The scheme-less authority clients use: a host name (or IP literal) and a port
/// when it is not 443.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    /// Lowercase host name, IPv4 address or bracketed IPv6 address.
    pub host: String,
    /// The https port when it is not the default 443.
    pub port: Option<u16>,
}

impl Base {
    /// `https://host[:port]`.
    pub fn url(&self) -> String {
        match self.port {
            Some(p) => format!("https://{}:{p}", self.host),
            None => format!("https://{}", self.host),
        }
    }

    /// The EWS endpoint.
    pub fn ews_url(&self) -> String {
        format!("{}/EWS/Exchange.asmx", self.url())
    }

    /// The POX Autodiscover endpoint (v2 JSON's `AutodiscoverV1`).
    pub fn pox_url(&self) -> String {
        format!("{}/autodiscover/autodiscover.xml", self.url())
    }

    /// The offline address book URL the POX answer names (Evolution expects one).
    pub fn oab_url(&self) -> String {
        format!("{}/OAB/", self.url())
    }
}

/// Whether a listener is TLS from the first byte or upgrades with STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Implicit,
    StartTls,
}

/// One IMAP or SMTP submission listener as clients are told of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    pub port: u16,
    pub security: Security,
}

/// Everything per-server that Autodiscover answers carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// `[ews] public_url`, when set: wins over the `Host` header.
    public: Option<Base>,
    /// When neither `public_url` nor a valid `Host` header says it.
    fallback: Base,
    /// IMAP listeners, implicit TLS first.
    pub imap: Vec<Service>,
    /// SMTP submission listeners (never the MX listener), implicit TLS first.
    pub smtp: Vec<Service>,
}

/// A listener worth advertising: enabled, on a known port (not 0, which the
/// kernel picks at start), and with TLS (plaintext is never advertised).
fn service(listener: Option<&ListenerConfig>) -> Option<Service> {
    let l = listener.filter(|l| l.enabled && l.port != 0)?;
    let security = match l.tls {
        TlsMode::Implicit => Security::Implicit,
        TlsMode::Starttls => Security::StartTls,
        TlsMode::None => return None,
    };
    Some(Service {
        port: l.port,
        security,
    })
}

impl Site {
    /// The site a configuration describes.
    pub fn from_config(config: &Config) -> Site {
        let l = &config.listeners;
        let https_port = l.https.as_ref().map(|h| h.port).unwrap_or(443);
        let fallback = Base {
            host: config.server.hostname.to_ascii_lowercase(),
            port: (https_port != 443 && https_port != 0).then_some(https_port),
        };
        let public = config.ews.public_url.as_deref().and_then(|u| {
            let rest = u.strip_prefix("https://")?;
            parse_host(rest.strip_suffix('/').unwrap_or(rest))
        });
        Site {
            public,
            fallback,
            imap: [service(l.imaps.as_ref()), service(l.imap.as_ref())]
                .into_iter()
                .flatten()
                .collect(),
            smtp: [
                service(l.submissions.as_ref()),
                service(l.submission.as_ref()),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }
    }

    /// A site with explicit parts (tests).
    #[cfg(test)]
    pub fn new(
        public: Option<Base>,
        fallback: Base,
        imap: Vec<Service>,
        smtp: Vec<Service>,
    ) -> Site {
        Site {
            public,
            fallback,
            imap,
            smtp,
        }
    }

    /// The base for a request that came with this `Host` header.
    pub fn base(&self, host_header: Option<&str>) -> Base {
        if let Some(p) = &self.public {
            return p.clone();
        }
        host_header
            .and_then(parse_host)
            .unwrap_or_else(|| self.fallback.clone())
    }
}

/// A `Host` header value (`host[:port]`) when it is one: a DNS name, an IPv4
/// address or a bracketed IPv6 address, and a port; `None` for anything else, so
/// nothing a client sent but a plain host name ever reaches an answer.
pub fn parse_host(value: &str) -> Option<Base> {
    let value = value.trim();
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        if inner.is_empty()
            || !inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return None;
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{}]", inner.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match value.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        };
        let host = host.strip_suffix('.').unwrap_or(host);
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
            return None;
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>().ok()? {
                0 => return None,
                443 => None,
                n => Some(n),
            }
        }
        Some(_) => return None,
    };
    Some(Base { host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(host: &str, port: Option<u16>) -> Base {
        Base {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn host_headers_are_host_and_port_or_nothing() {
        assert_eq!(
            parse_host("Mail.Example.COM"),
            Some(base("mail.example.com", None))
        );
        assert_eq!(
            parse_host("mail.example.com:443"),
            Some(base("mail.example.com", None))
        );
        assert_eq!(
            parse_host("localhost:8443"),
            Some(base("localhost", Some(8443)))
        );
        assert_eq!(parse_host("127.0.0.1:9"), Some(base("127.0.0.1", Some(9))));
        assert_eq!(parse_host("[::1]:8443"), Some(base("[::1]", Some(8443))));
        assert_eq!(parse_host("example.com."), Some(base("example.com", None)));
        for bad in [
            "",
            ":443",
            "evil.com/x",
            "a@b",
            "a b",
            "host:0",
            "host:65536",
            "host:-1",
            "host:",
            "-a.com",
            "a..b",
            "[::1",
            "[x]:1",
            "[::1]x",
            "\"><script>",
            &"a".repeat(64),
        ] {
            assert_eq!(parse_host(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn public_url_beats_host_which_beats_the_fallback() {
        let fallback = base("mx.example.org", Some(8443));
        let site = Site::new(None, fallback.clone(), vec![], vec![]);
        assert_eq!(
            site.base(Some("autodiscover.acme.test")).url(),
            "https://autodiscover.acme.test"
        );
        assert_eq!(site.base(Some("bad/host")), fallback);
        assert_eq!(
            site.base(None).ews_url(),
            "https://mx.example.org:8443/EWS/Exchange.asmx"
        );
        let public = base("mail.acme.test", None);
        let site = Site::new(Some(public.clone()), fallback, vec![], vec![]);
        assert_eq!(site.base(Some("other.test")), public);
    }

    #[test]
    fn advertises_only_tls_listeners_on_known_ports() {
        let text = format!(
            "[server]\nhostname = \"MX.Acme.test\"\ndata_dir = \"/d\"\n\
             [ews]\npublic_url = \"https://mail.acme.test/\"\n{}",
            [
                ("https", 8443, "implicit"),
                ("imaps", 993, "implicit"),
                ("imap", 143, "starttls"),
                ("submissions", 0, "implicit"),
                ("submission", 587, "starttls"),
                ("smtp", 25, "starttls"),
            ]
            .iter()
            .map(|(n, p, t)| format!(
                "[listeners.{n}]\naddress = \"127.0.0.1\"\nport = {p}\ntls = \"{t}\"\n"
            ))
            .collect::<String>()
        );
        let config = Config::parse(&text, "t.toml").unwrap();
        let site = Site::from_config(&config);
        assert_eq!(site.base(Some("x.test")), base("mail.acme.test", None));
        assert_eq!(
            site.imap,
            vec![
                Service {
                    port: 993,
                    security: Security::Implicit
                },
                Service {
                    port: 143,
                    security: Security::StartTls
                }
            ]
        );
        assert_eq!(
            site.smtp,
            vec![Service {
                port: 587,
                security: Security::StartTls
            }]
        );
        assert_eq!(site.fallback, base("mx.acme.test", Some(8443)));
    }

    #[test]
    fn a_public_url_must_be_https_and_a_host() {
        let with = |url: &str| {
            Config::parse(
                &format!(
                    "[server]\nhostname = \"a\"\ndata_dir = \"/d\"\n[ews]\npublic_url = \"{url}\"\n"
                ),
                "t.toml",
            )
        };
        for good in ["https://mail.acme.test", "https://mail.acme.test:8443/"] {
            assert!(with(good).is_ok(), "{good}");
        }
        for bad in [
            "http://mail.acme.test",
            "https://mail.acme.test/ews",
            "https://a b",
            "https://h:0",
            "mail.acme.test",
        ] {
            let e = with(bad).unwrap_err().0;
            assert!(e.contains("ews.public_url"), "{bad}: {e}");
        }
    }
}
