//! The protocol vocabulary of access control rules (`Actions` / `NotActions`) and a
//! bitset so rule matching on the hot path is one AND.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A client protocol, spelled as WorkMail's rule action values.
///
/// `IncomingEmail`/`OutgoingEmail` exist only as audit labels for MTA traffic and are not
/// rule actions, so they are not variants here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    /// Exchange ActiveSync (accepted for rule compatibility; no listener yet).
    ActiveSync,
    /// Autodiscover (POX, SOAP and v2 JSON).
    AutoDiscover,
    /// Exchange Web Services; the only protocol an impersonation role may use.
    #[serde(rename = "EWS")]
    Ews,
    /// IMAP4rev1 / IMAP4rev2.
    #[serde(rename = "IMAP")]
    Imap,
    /// SMTP submission (never MX delivery).
    #[serde(rename = "SMTP")]
    Smtp,
    /// Outlook for Windows (accepted for rule compatibility).
    WindowsOutlook,
    /// Webmail (accepted for rule compatibility).
    WebMail,
}

impl Protocol {
    /// Every protocol, in declaration order.
    pub const ALL: [Protocol; 7] = [
        Protocol::ActiveSync,
        Protocol::AutoDiscover,
        Protocol::Ews,
        Protocol::Imap,
        Protocol::Smtp,
        Protocol::WindowsOutlook,
        Protocol::WebMail,
    ];

    /// WorkMail's spelling, as used in rules and in audit `protocol` fields.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::ActiveSync => "ActiveSync",
            Protocol::AutoDiscover => "AutoDiscover",
            Protocol::Ews => "EWS",
            Protocol::Imap => "IMAP",
            Protocol::Smtp => "SMTP",
            Protocol::WindowsOutlook => "WindowsOutlook",
            Protocol::WebMail => "WebMail",
        }
    }

    /// Parses a rule action value. Case-insensitive, so `imap` and `Autodiscover`
    /// (the guide's prose spelling) are accepted; stored rules use [`Protocol::as_str`].
    pub fn parse(value: &str) -> Option<Protocol> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(value))
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = super::AccessError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Protocol::parse(s).ok_or_else(|| {
            super::AccessError::InvalidParameter(
                "Action must be one of ActiveSync, AutoDiscover, EWS, IMAP, SMTP, \
                 WindowsOutlook, WebMail"
                    .into(),
            )
        })
    }
}

/// A set of protocols as a bitmask, precomputed when a rule is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProtocolSet(u8);

impl ProtocolSet {
    /// True when no protocol is in the set (the condition is not set).
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Membership test: one AND.
    pub fn contains(self, p: Protocol) -> bool {
        self.0 & p.bit() != 0
    }
}

impl FromIterator<Protocol> for ProtocolSet {
    fn from_iter<I: IntoIterator<Item = Protocol>>(iter: I) -> Self {
        ProtocolSet(iter.into_iter().fold(0, |acc, p| acc | p.bit()))
    }
}
