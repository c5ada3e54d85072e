//! FindItem's `Restriction` and `SortOrder`: parsed into an expression over item
//! properties and evaluated per message, pure (the values come from
//! [`Values`], built from store metadata and the message summary).

use std::cmp::Ordering;

use super::shape::{Extended, Path};
use crate::ews::codes::ResponseCode;
use crate::ews::item::{Summary, keyword_to_category, parse_xsd_datetime};
use crate::ews::props::{self, ItemProps};
use crate::ews::xml::Element;
use crate::store::MessageMeta;

/// A property value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Int(i64),
    Bool(bool),
    Date(i64),
}

impl Value {
    /// Reads a constant as the kind of `like`.
    fn constant(text: &str, like: &Value) -> Option<Value> {
        let t = text.trim();
        Some(match like {
            Value::Text(_) => Value::Text(text.to_string()),
            Value::Int(_) => Value::Int(t.parse().ok()?),
            Value::Bool(_) => Value::Bool(match t {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return None,
            }),
            Value::Date(_) => Value::Date(parse_xsd_datetime(t)?),
        })
    }

    fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Text(a), Value::Text(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Date(a), Value::Date(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// How `Contains` matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    FullString,
    Prefixed,
    Substring,
    PrefixOnWords,
    ExactPhrase,
}

/// A parsed restriction.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Exists(Path),
    Compare(Path, Cmp, String),
    Contains {
        path: Path,
        text: String,
        mode: Mode,
        ignore_case: bool,
    },
}

fn path_of(el: &Element) -> Result<Path, ResponseCode> {
    el.children
        .iter()
        .find_map(Path::parse)
        .ok_or(ResponseCode::ErrorSchemaValidation)
}

fn constant(el: &Element) -> Result<String, ResponseCode> {
    el.child("FieldURIOrConstant")
        .and_then(|c| c.child("Constant"))
        .or_else(|| el.child("Constant"))
        .and_then(|c| c.attr("Value"))
        .map(str::to_string)
        .ok_or(ResponseCode::ErrorSchemaValidation)
}

/// Parses the content of a `Restriction` element (its one child).
pub fn parse(restriction: &Element) -> Result<Expr, ResponseCode> {
    let first = restriction
        .children
        .first()
        .ok_or(ResponseCode::ErrorSchemaValidation)?;
    parse_expr(first, 0)
}

fn parse_expr(el: &Element, depth: usize) -> Result<Expr, ResponseCode> {
    if depth > 64 {
        return Err(ResponseCode::ErrorSchemaValidation);
    }
    let all = |el: &Element| -> Result<Vec<Expr>, ResponseCode> {
        el.children
            .iter()
            .map(|c| parse_expr(c, depth + 1))
            .collect()
    };
    let cmp = |op| Ok(Expr::Compare(path_of(el)?, op, constant(el)?));
    match el.name.as_str() {
        "And" => Ok(Expr::And(all(el)?)),
        "Or" => Ok(Expr::Or(all(el)?)),
        "Not" => Ok(Expr::Not(Box::new(parse_expr(
            el.children
                .first()
                .ok_or(ResponseCode::ErrorSchemaValidation)?,
            depth + 1,
        )?))),
        "Exists" => Ok(Expr::Exists(path_of(el)?)),
        "IsEqualTo" => cmp(Cmp::Eq),
        "IsNotEqualTo" => cmp(Cmp::Ne),
        "IsGreaterThan" => cmp(Cmp::Gt),
        "IsGreaterThanOrEqualTo" => cmp(Cmp::Ge),
        "IsLessThan" => cmp(Cmp::Lt),
        "IsLessThanOrEqualTo" => cmp(Cmp::Le),
        "Contains" => {
            let mode = match el.attr("ContainmentMode").unwrap_or("Substring") {
                "FullString" => Mode::FullString,
                "Prefixed" => Mode::Prefixed,
                "PrefixOnWords" => Mode::PrefixOnWords,
                "ExactPhrase" => Mode::ExactPhrase,
                _ => Mode::Substring,
            };
            let flags = el.attr("ContainmentComparison").unwrap_or("Exact");
            Ok(Expr::Contains {
                path: path_of(el)?,
                text: constant(el)?,
                mode,
                ignore_case: flags.contains("IgnoreCase") || flags.contains("Loose"),
            })
        }
        _ => Err(ResponseCode::ErrorSchemaValidation),
    }
}

/// Something restrictions and sorting read property values from (a message, a
/// folder).
pub trait Props {
    /// Every value of a property (empty when it has none).
    fn get(&self, path: &Path) -> Vec<Value>;
}

/// A message's property values, as restrictions and sorting see them.
pub struct Values<'a> {
    pub meta: &'a MessageMeta,
    pub summary: Option<&'a Summary>,
    /// The decoded body text, when a restriction reads `item:Body`.
    pub body: Option<&'a str>,
    /// The properties kept beside the message, when a restriction reads any.
    pub props: Option<&'a ItemProps>,
}

/// A stored property's values as restriction values of its type.
fn typed(v: props::Value) -> Vec<Value> {
    let base = v.kind.strip_suffix("Array").unwrap_or(&v.kind).to_string();
    v.values
        .into_iter()
        .filter_map(|t| match base.as_str() {
            "Integer" | "Long" | "Short" => t.parse().ok().map(Value::Int),
            "Boolean" => Some(Value::Bool(t == "true")),
            "SystemTime" => parse_xsd_datetime(&t).map(Value::Date),
            _ => Some(Value::Text(t)),
        })
        .collect()
}

impl Values<'_> {
    fn flag(&self, f: &str) -> bool {
        self.meta.flags.iter().any(|x| x.eq_ignore_ascii_case(f))
    }
}

impl Props for Values<'_> {
    fn get(&self, path: &Path) -> Vec<Value> {
        let text = |s: &str| vec![Value::Text(s.to_string())];
        let addrs = |l: &[crate::ews::item::Addr]| -> Vec<Value> {
            l.iter().map(|a| Value::Text(a.address.clone())).collect()
        };
        let names = |l: &[crate::ews::item::Addr]| -> Vec<Value> {
            l.iter()
                .map(|a| Value::Text(a.name.clone().unwrap_or_else(|| a.address.clone())))
                .collect()
        };
        let received = Value::Date(self.meta.internal_date.div_euclid(1000));
        if let (Path::Field(f), Some(p)) = (path, self.props)
            && let Some(v) = p.field(f)
        {
            return typed(v);
        }
        match path {
            Path::Field(f) => match (f.as_str(), self.summary) {
                ("item:DateTimeReceived" | "item:DateTimeCreated" | "item:LastModifiedTime", _) => {
                    vec![received]
                }
                ("message:IsRead", _) => vec![Value::Bool(self.flag("\\Seen"))],
                ("item:IsDraft", _) => vec![Value::Bool(self.flag("\\Draft"))],
                ("item:Size", _) => vec![Value::Int(self.meta.size as i64)],
                ("item:ItemClass", _) => text("IPM.Note"),
                ("item:Categories", _) => self
                    .meta
                    .flags
                    .iter()
                    .filter_map(|k| keyword_to_category(k))
                    .map(Value::Text)
                    .collect(),
                ("item:Subject" | "message:ConversationTopic", Some(s)) => text(&s.subject),
                ("item:DateTimeSent", Some(s)) => s.sent.map(Value::Date).into_iter().collect(),
                ("item:HasAttachments", Some(s)) => vec![Value::Bool(s.has_attachments)],
                ("item:Importance", Some(s)) => text(s.importance),
                ("item:Sensitivity", Some(s)) => text(s.sensitivity),
                ("message:IsReadReceiptRequested", Some(s)) => vec![Value::Bool(s.read_receipt)],
                ("message:From", Some(s)) => addrs(&s.from),
                ("message:Sender", Some(s)) => addrs(if s.sender.is_empty() {
                    &s.from
                } else {
                    &s.sender
                }),
                ("message:ToRecipients", Some(s)) => addrs(&s.to),
                ("message:CcRecipients", Some(s)) => addrs(&s.cc),
                // The display strings hold names (or addresses without one).
                ("item:DisplayTo", Some(s)) => names(&s.to),
                ("item:DisplayCc", Some(s)) => names(&s.cc),
                ("message:InternetMessageId", Some(s)) => s
                    .message_id
                    .iter()
                    .map(|v| Value::Text(v.clone()))
                    .collect(),
                ("item:InReplyTo", Some(s)) => s
                    .in_reply_to
                    .iter()
                    .map(|v| Value::Text(v.clone()))
                    .collect(),
                ("message:References", Some(s)) => s
                    .references
                    .iter()
                    .map(|v| Value::Text(v.clone()))
                    .collect(),
                ("item:Body" | "item:TextBody", _) => self.body.map(text).unwrap_or_default(),
                _ => Vec::new(),
            },
            Path::Extended(e) => extended(self, e),
            Path::Indexed { .. } => Vec::new(),
        }
    }
}

fn extended(v: &Values<'_>, e: &Extended) -> Vec<Value> {
    match e.tag {
        Some(0x0E23) => vec![Value::Int(i64::from(v.meta.uid))],
        Some(0x1090) => vec![Value::Int(props::flag_status(v.props, v.flag("\\Flagged")))],
        Some(0x0E08) => vec![Value::Int(v.meta.size as i64)],
        _ => v
            .props
            .and_then(|p| p.extended(e))
            .map(typed)
            .unwrap_or_default(),
    }
}

/// Whether the expression reads anything beyond store metadata.
pub fn needs_message(e: &Expr) -> bool {
    let meta_only = |p: &Path| match p {
        Path::Field(f) => matches!(
            f.as_str(),
            "item:DateTimeReceived"
                | "item:DateTimeCreated"
                | "item:LastModifiedTime"
                | "message:IsRead"
                | "item:IsDraft"
                | "item:Size"
                | "item:ItemClass"
                | "item:Categories"
        ),
        Path::Extended(_) => true,
        Path::Indexed { .. } => true,
    };
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().any(needs_message),
        Expr::Not(x) => needs_message(x),
        Expr::Exists(p) | Expr::Compare(p, _, _) | Expr::Contains { path: p, .. } => !meta_only(p),
    }
}

/// The restriction an AQS `QueryString` means (the subset clients send:
/// `word`, `Key:value`, `Key:"a phrase"`, joined by AND, OR and NOT; adjacent
/// terms must all match). A bare word matches subject, body, sender or
/// recipients; `Subject`, `Body`, `From`, `To`, `Cc` and `Participants` one of
/// them, on addresses and display names, ignoring case.
pub fn parse_aqs(query: &str) -> Result<Expr, ResponseCode> {
    let mut tokens = Vec::new();
    let mut chars = query.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c == '"' {
                for q in chars.by_ref() {
                    if q == '"' {
                        break;
                    }
                    word.push(q);
                }
                continue;
            }
            word.push(c);
        }
        tokens.push(word);
    }
    let field = |f: &str| Path::Field(f.to_string());
    let any_of = |paths: &[&str], text: &str| {
        Expr::Or(
            paths
                .iter()
                .map(|p| Expr::Contains {
                    path: field(p),
                    text: text.to_string(),
                    mode: Mode::Substring,
                    ignore_case: true,
                })
                .collect(),
        )
    };
    let term = |t: &str| -> Result<Expr, ResponseCode> {
        const KEYS: &[&str] = &["subject", "body", "from", "to", "cc", "participants"];
        let (key, value) = match t.split_once(':') {
            Some((k, v)) if KEYS.contains(&k.to_ascii_lowercase().as_str()) => {
                (k.to_ascii_lowercase(), v)
            }
            // Any other `a:b` is a word to find, colon and all.
            _ => (String::new(), t),
        };
        if value.is_empty() {
            return Err(ResponseCode::ErrorSchemaValidation);
        }
        let paths: &[&str] = match key.as_str() {
            "" => &[
                "item:Subject",
                "item:Body",
                "message:From",
                "message:ToRecipients",
                "item:DisplayTo",
            ],
            "subject" => &["item:Subject"],
            "body" => &["item:Body"],
            "from" => &["message:From"],
            "to" => &["message:ToRecipients", "item:DisplayTo"],
            "cc" => &["message:CcRecipients", "item:DisplayCc"],
            "participants" => &[
                "message:From",
                "message:ToRecipients",
                "item:DisplayTo",
                "message:CcRecipients",
                "item:DisplayCc",
            ],
            _ => return Err(ResponseCode::ErrorSchemaValidation),
        };
        Ok(any_of(paths, value))
    };
    // Disjunctive groups of conjunctions: `a b OR c` is (a AND b) OR c.
    let mut groups: Vec<Vec<Expr>> = vec![Vec::new()];
    let mut negate = false;
    for t in &tokens {
        match t.as_str() {
            "AND" => {}
            "OR" => groups.push(Vec::new()),
            "NOT" => negate = true,
            _ => {
                let e = term(t)?;
                let e = if negate { Expr::Not(Box::new(e)) } else { e };
                negate = false;
                groups.last_mut().expect("one group at least").push(e);
            }
        }
    }
    if groups.iter().any(Vec::is_empty) {
        return Err(ResponseCode::ErrorSchemaValidation);
    }
    Ok(Expr::Or(groups.into_iter().map(Expr::And).collect()))
}

/// Whether the expression reads properties kept beside the message.
pub fn needs_props(e: &Expr) -> bool {
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().any(needs_props),
        Expr::Not(x) => needs_props(x),
        Expr::Exists(p) | Expr::Compare(p, _, _) | Expr::Contains { path: p, .. } => {
            props::is_stored(p)
        }
    }
}

/// Whether the sort keys read properties kept beside the message.
pub fn sort_needs_props(keys: &[Order]) -> bool {
    keys.iter().any(|k| props::is_stored(&k.path))
}

/// Whether the expression reads the body text.
pub fn needs_body(e: &Expr) -> bool {
    let body = |p: &Path| matches!(p, Path::Field(f) if f == "item:Body" || f == "item:TextBody");
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().any(needs_body),
        Expr::Not(x) => needs_body(x),
        Expr::Exists(p) | Expr::Compare(p, _, _) | Expr::Contains { path: p, .. } => body(p),
    }
}

fn contains(hay: &str, needle: &str, mode: Mode, ignore_case: bool) -> bool {
    let (h, n) = if ignore_case {
        (hay.to_lowercase(), needle.to_lowercase())
    } else {
        (hay.to_string(), needle.to_string())
    };
    match mode {
        Mode::FullString => h == n,
        Mode::Prefixed => h.starts_with(&n),
        Mode::Substring | Mode::ExactPhrase => h.contains(&n),
        Mode::PrefixOnWords => h
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w.starts_with(&n)),
    }
}

/// Evaluates the expression for one message. A multi-valued property (Categories,
/// recipients) matches when any value does.
pub fn eval(e: &Expr, v: &dyn Props) -> bool {
    match e {
        Expr::And(list) => list.iter().all(|x| eval(x, v)),
        Expr::Or(list) => list.iter().any(|x| eval(x, v)),
        Expr::Not(x) => !eval(x, v),
        Expr::Exists(p) => !v.get(p).is_empty(),
        Expr::Compare(p, op, c) => {
            let values = v.get(p);
            let test = |val: &Value| {
                let Some(k) = Value::constant(c, val) else {
                    return false;
                };
                let Some(ord) = val.compare(&k) else {
                    return false;
                };
                match op {
                    Cmp::Eq => ord == Ordering::Equal,
                    Cmp::Ne => ord != Ordering::Equal,
                    Cmp::Gt => ord == Ordering::Greater,
                    Cmp::Ge => ord != Ordering::Less,
                    Cmp::Lt => ord == Ordering::Less,
                    Cmp::Le => ord != Ordering::Greater,
                }
            };
            if *op == Cmp::Ne {
                values.iter().all(test)
            } else {
                values.iter().any(test)
            }
        }
        Expr::Contains {
            path,
            text,
            mode,
            ignore_case,
        } => v.get(path).iter().any(|val| match val {
            Value::Text(s) => contains(s, text, *mode, *ignore_case),
            _ => false,
        }),
    }
}

/// One sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub path: Path,
    pub descending: bool,
}

/// Parses `SortOrder`.
pub fn parse_sort(el: Option<&Element>) -> Vec<Order> {
    el.map(|s| {
        s.children_named("FieldOrder")
            .filter_map(|f| {
                Some(Order {
                    path: f.children.iter().find_map(Path::parse)?,
                    descending: f.attr("Order") == Some("Descending"),
                })
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Compares two messages by the sort keys (missing values first).
pub fn compare(keys: &[Order], a: &dyn Props, b: &dyn Props) -> Ordering {
    for k in keys {
        let (va, vb) = (a.get(&k.path), b.get(&k.path));
        let ord = match (va.first(), vb.first()) {
            (Some(x), Some(y)) => x.compare(y).unwrap_or(Ordering::Equal),
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        let ord = if k.descending { ord.reverse() } else { ord };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// Whether the sort keys read anything beyond store metadata.
pub fn sort_needs_message(keys: &[Order]) -> bool {
    keys.iter()
        .any(|k| needs_message(&Expr::Exists(k.path.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::xml::parse as xml;

    fn meta(flags: &[&str]) -> MessageMeta {
        MessageMeta {
            uid: 7,
            modseq: 1,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            internal_date: 1_800_000_000_000,
            size: 1234,
            body_id: 1,
            item_id: "i".into(),
        }
    }

    fn restriction(body: &str) -> Expr {
        parse(&xml(format!("<Restriction>{body}</Restriction>").as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn exchangelib_teardown_query_matches_categories_or_prefixed_subject() {
        let e = restriction(
            r#"<Or><IsEqualTo><FieldURI FieldURI="item:Categories"/><FieldURIOrConstant><Constant Value="abcDEF"/></FieldURIOrConstant></IsEqualTo><Contains ContainmentMode="Prefixed" ContainmentComparison="Exact"><FieldURI FieldURI="item:Subject"/><Constant Value="Delivered: Subject: "/></Contains></Or>"#,
        );
        let summary = Summary {
            subject: "Delivered: Subject: x".into(),
            ..Summary::default()
        };
        let m = meta(&["\\Seen", "other", "ABCdef"]);
        assert!(eval(
            &e,
            &Values {
                meta: &m,
                summary: Some(&summary),
                body: None,
                props: None,
            }
        ));
        let m2 = meta(&["other"]);
        let s2 = Summary {
            subject: "delivered: subject: x".into(),
            ..Summary::default()
        };
        assert!(
            !eval(
                &e,
                &Values {
                    meta: &m2,
                    summary: Some(&s2),
                    body: None,
                    props: None,
                }
            ),
            "Exact is case-sensitive"
        );
        assert!(needs_message(&e));
    }

    #[test]
    fn comparisons_dates_not_and_contains_modes() {
        let m = meta(&[]);
        let s = Summary {
            subject: "Quarterly report for Q3".into(),
            ..Summary::default()
        };
        let v = Values {
            meta: &m,
            summary: Some(&s),
            body: None,
            props: None,
        };
        let gt = restriction(
            r#"<IsGreaterThan><FieldURI FieldURI="item:DateTimeReceived"/><FieldURIOrConstant><Constant Value="2026-01-01T00:00:00Z"/></FieldURIOrConstant></IsGreaterThan>"#,
        );
        assert!(eval(&gt, &v));
        assert!(!needs_message(&gt));
        let unread = restriction(
            r#"<Not><IsEqualTo><FieldURI FieldURI="message:IsRead"/><FieldURIOrConstant><Constant Value="true"/></FieldURIOrConstant></IsEqualTo></Not>"#,
        );
        assert!(eval(&unread, &v));
        for (mode, needle, hit) in [
            ("Substring", "REPORT", true),
            ("Prefixed", "quarterly", true),
            ("Prefixed", "report", false),
            ("PrefixOnWords", "rep", true),
            ("FullString", "quarterly report for q3", true),
        ] {
            let e = restriction(&format!(
                r#"<Contains ContainmentMode="{mode}" ContainmentComparison="IgnoreCase"><FieldURI FieldURI="item:Subject"/><Constant Value="{needle}"/></Contains>"#
            ));
            assert_eq!(eval(&e, &v), hit, "{mode} {needle}");
        }
        let uid = restriction(
            r#"<IsGreaterThanOrEqualTo><ExtendedFieldURI PropertyTag="0x0e23" PropertyType="Integer"/><FieldURIOrConstant><Constant Value="7"/></FieldURIOrConstant></IsGreaterThanOrEqualTo>"#,
        );
        assert!(eval(&uid, &v));
        let bad_date = restriction(
            r#"<IsEqualTo><FieldURI FieldURI="item:DateTimeReceived"/><FieldURIOrConstant><Constant Value="tomorrow"/></FieldURIOrConstant></IsEqualTo>"#,
        );
        assert!(!eval(&bad_date, &v));
    }

    #[test]
    fn aqs_queries_as_exchangelib_sends_them() {
        let m = meta(&[]);
        let s = Summary {
            subject: "Quarterly report".into(),
            to: vec![crate::ews::item::Addr {
                name: Some("Bob Builder".into()),
                address: "bob@x.test".into(),
            }],
            ..Summary::default()
        };
        let v = Values {
            meta: &m,
            summary: Some(&s),
            body: None,
            props: None,
        };
        for (q, hit) in [
            ("Subject:quarterly", true),
            ("To:bob@x.test AND Subject:report", true),
            ("To:\"Bob Builder\" AND Subject:report", true),
            ("Participants:builder", true),
            ("To:carol AND Subject:report", false),
            ("To:carol OR Subject:report", true),
            ("NOT Subject:report", false),
            ("quarterly", true),
        ] {
            assert_eq!(eval(&parse_aqs(q).unwrap(), &v), hit, "{q}");
        }
        assert!(
            !eval(&parse_aqs("Color:red").unwrap(), &v),
            "a word, not a key"
        );
        for bad in ["", "Subject:", "a OR"] {
            assert!(parse_aqs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_and_too_deep_restrictions_are_refused() {
        let r = xml(b"<Restriction><Frobnicate/></Restriction>").unwrap();
        assert_eq!(parse(&r), Err(ResponseCode::ErrorSchemaValidation));
        let deep = format!(
            "<Restriction>{}<Exists><FieldURI FieldURI=\"item:Subject\"/></Exists>{}</Restriction>",
            "<Not>".repeat(100),
            "</Not>".repeat(100)
        );
        assert_eq!(
            parse(&xml(deep.as_bytes()).unwrap()),
            Err(ResponseCode::ErrorSchemaValidation)
        );
        let r = xml(b"<Restriction><IsEqualTo><FieldURI FieldURI=\"item:Subject\"/></IsEqualTo></Restriction>").unwrap();
        assert_eq!(parse(&r), Err(ResponseCode::ErrorSchemaValidation));
    }

    #[test]
    fn sorts_by_keys_with_direction() {
        let (a, b) = (
            meta(&[]),
            MessageMeta {
                uid: 9,
                internal_date: 1,
                ..meta(&[])
            },
        );
        let va = Values {
            meta: &a,
            summary: None,
            body: None,
            props: None,
        };
        let vb = Values {
            meta: &b,
            summary: None,
            body: None,
            props: None,
        };
        let keys = parse_sort(Some(&xml(br#"<SortOrder><FieldOrder Order="Descending"><FieldURI FieldURI="item:DateTimeReceived"/></FieldOrder></SortOrder>"#).unwrap()));
        assert_eq!(compare(&keys, &va, &vb), Ordering::Less);
        assert!(!sort_needs_message(&keys));
    }
}
