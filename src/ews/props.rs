//! Item properties EWS keeps beside the message (`store::Property`): the
//! first-class fields no message header carries (reminders, receipt and response
//! requests, sensitivity once a client sets it, culture) and every
//! `ExtendedProperty` a client sets. Each is stored under the name of the MAPI
//! property behind it, so a field and an `ExtendedFieldURI` naming the same MAPI
//! property (`item:ReminderIsSet` and PSETID_Common 0x8503) are one value, and a
//! property set named by GUID or by its distinguished name is one set.
//!
//! A stored value is its EWS `PropertyType` and its values as EWS writes them
//! (`true`, `42`, `2026-12-07T05:03:20Z`, base64), NUL-separated: XML text never
//! holds a NUL, so no escaping is needed.

use super::codes::ResponseCode;
use super::item::{parse_xsd_datetime, xsd_datetime};
use super::ops::shape::{Extended, Path};
use super::xml::Element;
use crate::store::Property;

/// Distinguished property sets and their GUIDs (MS-OXPROPS).
const SETS: &[(&str, &str)] = &[
    ("Meeting", "6ed8da90-450b-101b-98da-00aa003f1305"),
    ("Appointment", "00062002-0000-0000-c000-000000000046"),
    ("Common", "00062008-0000-0000-c000-000000000046"),
    ("PublicStrings", "00020329-0000-0000-c000-000000000046"),
    ("Address", "00062004-0000-0000-c000-000000000046"),
    ("InternetHeaders", "00020386-0000-0000-c000-000000000046"),
    ("CalendarAssistant", "11000e07-b51b-40d6-af21-caa85edab1d0"),
    ("UnifiedMessaging", "4442858e-a9e3-4e80-b900-317a210cc15b"),
    ("Task", "00062003-0000-0000-c000-000000000046"),
    ("Sharing", "00062040-0000-0000-c000-000000000046"),
];

/// MAPI tags computed from the store's own data (UID, flags, size, ...): never
/// stored, a write of one goes to the flags it mirrors (see `ops::write`).
/// PR_FLAG_STATUS (0x1090) is both: `\Flagged` is its 2, and the value a client
/// wrote is kept for the states IMAP has no flag for (1, complete).
pub const COMPUTED_TAGS: &[u32] = &[0x0E07, 0x0E08, 0x0E17, 0x0E23, 0x1081, 0x0E06, 0x007D];

/// PR_FLAG_STATUS: the stored value while it agrees with the IMAP `\Flagged`
/// flag (2 exactly when flagged), else what the flag says.
pub fn flag_status(props: Option<&ItemProps>, flagged: bool) -> i64 {
    let tag = Extended {
        tag: Some(0x1090),
        ..Extended::default()
    };
    let stored = props
        .and_then(|p| p.extended(&tag))
        .and_then(|v| v.values.first()?.parse::<i64>().ok());
    match stored {
        Some(v) if (v == 2) == flagged => v,
        _ if flagged => 2,
        _ => 0,
    }
}

/// The stored name of an extended property, one for every way of spelling it;
/// `None` when the URI names no property (no tag, no id, no name, or no set).
pub fn key(e: &Extended) -> Option<String> {
    if let Some(tag) = e.tag {
        return Some(format!("tag:{tag:04x}"));
    }
    let set = match (&e.set_id, &e.distinguished_set) {
        (Some(id), _) => id
            .trim()
            .trim_matches(|c| c == '{' || c == '}')
            .to_ascii_lowercase(),
        (None, Some(name)) => SETS.iter().find(|(n, _)| n == name)?.1.to_string(),
        (None, None) => return None,
    };
    match (e.id, &e.name) {
        (Some(id), _) => Some(format!("set:{set}:id:{id}")),
        (None, Some(name)) => Some(format!("set:{set}:name:{name}")),
        (None, None) => None,
    }
}

/// A stored value: its EWS PropertyType and its values (several for `...Array`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub kind: String,
    pub values: Vec<String>,
}

impl Value {
    fn encode(&self) -> Vec<u8> {
        let mut out = self.kind.clone();
        for v in &self.values {
            out.push('\0');
            out.push_str(v);
        }
        out.into_bytes()
    }

    fn decode(raw: &[u8]) -> Option<Value> {
        let text = std::str::from_utf8(raw).ok()?;
        let mut parts = text.split('\0');
        let kind = parts.next()?.to_string();
        Some(Value {
            kind,
            values: parts.map(str::to_string).collect(),
        })
    }

    /// Whether EWS writes it as `t:Values` (an array type).
    pub fn is_array(&self) -> bool {
        self.kind.ends_with("Array")
    }
}

/// Checks and normalises one value of a type (dates to UTC `Z` form, numbers
/// and booleans to their canonical spelling); `None` if it is not one.
fn normalise(kind: &str, text: &str) -> Option<String> {
    let t = text.trim();
    let base = kind.strip_suffix("Array").unwrap_or(kind);
    Some(match base {
        "Boolean" => match t {
            "true" | "1" => "true".into(),
            "false" | "0" => "false".into(),
            _ => return None,
        },
        "Integer" | "Long" | "Short" => t.parse::<i64>().ok()?.to_string(),
        "SystemTime" => xsd_datetime(parse_xsd_datetime(t)?),
        "Double" | "Float" | "Currency" | "ApplicationTime" => {
            t.parse::<f64>().ok()?;
            t.to_string()
        }
        _ => text.to_string(),
    })
}

/// A first-class field kept as the MAPI property behind it.
struct Field {
    uri: &'static str,
    /// The element name in `t:Message`.
    element: &'static str,
    key: &'static str,
    kind: &'static str,
}

/// PSETID_Common 0x8501 (ReminderDelta), 0x8502 (ReminderTime), 0x8503 (ReminderSet).
const FIELDS: &[Field] = &[
    Field {
        uri: "item:Sensitivity",
        element: "Sensitivity",
        key: "tag:0036",
        kind: "Integer",
    },
    Field {
        uri: "item:ReminderDueBy",
        element: "ReminderDueBy",
        key: "set:00062008-0000-0000-c000-000000000046:id:34050",
        kind: "SystemTime",
    },
    Field {
        uri: "item:ReminderIsSet",
        element: "ReminderIsSet",
        key: "set:00062008-0000-0000-c000-000000000046:id:34051",
        kind: "Boolean",
    },
    Field {
        uri: "item:ReminderMinutesBeforeStart",
        element: "ReminderMinutesBeforeStart",
        key: "set:00062008-0000-0000-c000-000000000046:id:34049",
        kind: "Integer",
    },
    Field {
        uri: "item:Culture",
        element: "Culture",
        key: "field:Culture",
        kind: "String",
    },
    Field {
        uri: "message:IsReadReceiptRequested",
        element: "IsReadReceiptRequested",
        key: "tag:0029",
        kind: "Boolean",
    },
    Field {
        uri: "message:IsDeliveryReceiptRequested",
        element: "IsDeliveryReceiptRequested",
        key: "tag:0023",
        kind: "Boolean",
    },
    Field {
        uri: "message:IsResponseRequested",
        element: "IsResponseRequested",
        key: "tag:0063",
        kind: "Boolean",
    },
];

/// EWS Sensitivity names by PR_SENSITIVITY value.
const SENSITIVITY: [&str; 4] = ["Normal", "Personal", "Private", "Confidential"];

fn field_by_uri(uri: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.uri == uri)
}

/// Whether reading `path` needs the item's stored properties.
pub fn is_stored(path: &Path) -> bool {
    match path {
        Path::Field(f) => field_by_uri(f).is_some(),
        Path::Extended(e) => e.tag.is_none_or(|t| !COMPUTED_TAGS.contains(&t)),
        Path::Indexed { .. } => false,
    }
}

/// The properties of one item, as read from the store.
#[derive(Debug, Clone, Default)]
pub struct ItemProps(Vec<Property>);

impl ItemProps {
    /// Wraps what the store returned for one item.
    pub fn new(props: Vec<Property>) -> ItemProps {
        ItemProps(props)
    }

    /// The properties as the store keeps them.
    pub fn into_inner(self) -> Vec<Property> {
        self.0
    }

    fn value(&self, key: &str) -> Option<Value> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| Value::decode(v))
    }

    /// An extended property's stored value.
    pub fn extended(&self, e: &Extended) -> Option<Value> {
        self.value(&key(e)?)
    }

    /// A first-class field's value as EWS writes it (`Confidential`, `true`, ...),
    /// when the item has it.
    pub fn field(&self, uri: &str) -> Option<Value> {
        let f = field_by_uri(uri)?;
        let v = self.value(f.key)?;
        if f.uri != "item:Sensitivity" {
            return Some(v);
        }
        let i: usize = v.values.first()?.parse().ok()?;
        Some(Value {
            kind: "String".into(),
            values: vec![SENSITIVITY.get(i)?.to_string()],
        })
    }

    /// A first-class field's single value as text.
    pub fn field_text(&self, uri: &str) -> Option<String> {
        self.field(uri)?.values.into_iter().next()
    }
}

/// The property a first-class field's value sets, from its EWS text.
fn field_property(f: &Field, text: &str) -> Result<Property, ResponseCode> {
    let text = if f.uri == "item:Sensitivity" {
        let i = SENSITIVITY
            .iter()
            .position(|s| *s == text.trim())
            .ok_or(ResponseCode::ErrorInvalidValueForProperty)?;
        i.to_string()
    } else {
        text.to_string()
    };
    let v = normalise(f.kind, &text).ok_or(ResponseCode::ErrorInvalidValueForProperty)?;
    let value = Value {
        kind: f.kind.into(),
        values: vec![v],
    };
    Ok((f.key.to_string(), value.encode()))
}

/// The property an `ExtendedProperty` element sets (`ExtendedFieldURI` and `Value`
/// or `Values`), checked against its PropertyType.
pub fn extended_property(el: &Element) -> Result<(Extended, Property), ResponseCode> {
    let uri = el
        .child("ExtendedFieldURI")
        .ok_or(ResponseCode::ErrorSchemaValidation)?;
    let e = Extended::parse(uri);
    let key = key(&e).ok_or(ResponseCode::ErrorInvalidExtendedProperty)?;
    let texts: Vec<&str> = match (el.child("Value"), el.child("Values")) {
        (Some(v), None) if !e.kind.ends_with("Array") => vec![v.text.as_str()],
        (None, Some(list)) if e.kind.ends_with("Array") => list
            .children_named("Value")
            .map(|v| v.text.as_str())
            .collect(),
        _ => return Err(ResponseCode::ErrorInvalidExtendedPropertyValue),
    };
    let values = texts
        .iter()
        .map(|t| normalise(&e.kind, t))
        .collect::<Option<Vec<_>>>()
        .ok_or(ResponseCode::ErrorInvalidExtendedPropertyValue)?;
    let value = Value {
        kind: e.kind.clone(),
        values,
    };
    Ok((e, (key, value.encode())))
}

/// The properties a new item's `t:Message` (or `t:Item`) sets: its first-class
/// fields kept here and its extended properties (the computed ones excepted).
pub fn of_new_item(item: &Element) -> Result<Vec<Property>, ResponseCode> {
    let mut out: Vec<Property> = Vec::new();
    for child in &item.children {
        let prop = if child.name == "ExtendedProperty" {
            let (e, prop) = extended_property(child)?;
            if e.tag.is_some_and(|t| COMPUTED_TAGS.contains(&t)) {
                continue;
            }
            prop
        } else if let Some(f) = FIELDS.iter().find(|f| f.element == child.name) {
            field_property(f, &child.text)?
        } else {
            continue;
        };
        out.retain(|(k, _)| *k != prop.0);
        out.push(prop);
    }
    Ok(out)
}

/// What one UpdateItem change does to the stored properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    Set(Property),
    Remove(String),
}

/// The property edit of one `SetItemField`/`AppendToItemField`/`DeleteItemField`,
/// `None` when it names no stored property.
pub fn edit(change: &Element, path: &Path) -> Option<Result<Edit, ResponseCode>> {
    let deleting = change.name == "DeleteItemField";
    let value = change
        .children
        .iter()
        .find(|c| !c.name.ends_with("FieldURI"));
    match path {
        Path::Field(uri) => {
            let f = field_by_uri(uri)?;
            if deleting {
                return Some(Ok(Edit::Remove(f.key.to_string())));
            }
            let text = value
                .and_then(|v| v.child(f.element))
                .map(|e| e.text.as_str());
            Some(match text {
                Some(t) => field_property(f, t).map(Edit::Set),
                None => Err(ResponseCode::ErrorSchemaValidation),
            })
        }
        Path::Extended(e) if is_stored(path) => {
            if deleting {
                return Some(
                    key(e)
                        .map(Edit::Remove)
                        .ok_or(ResponseCode::ErrorInvalidExtendedProperty),
                );
            }
            let prop = value.and_then(|v| v.child("ExtendedProperty"));
            Some(match prop {
                Some(p) => extended_property(p).map(|(_, prop)| Edit::Set(prop)),
                None => Err(ResponseCode::ErrorSchemaValidation),
            })
        }
        _ => None,
    }
}

/// The header an attached item (which has no item of its own to keep them
/// beside) carries its properties and categories in, as Exchange carries MAPI
/// properties through MIME in TNEF: base64 of NUL-separated name, value pairs.
pub const ATTACHED_HEADER: &str = "X-Mailgate-Item-Properties";

/// The header line for an attached item's properties and categories (`None`
/// when it has neither).
pub fn attached_header(props: &[Property], categories: &[String]) -> Option<String> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    if props.is_empty() && categories.is_empty() {
        return None;
    }
    let mut fields: Vec<String> = Vec::new();
    for (k, v) in props {
        fields.push(format!("p {k}"));
        fields.push(engine.encode(v));
    }
    for c in categories {
        fields.push("c".into());
        fields.push(c.clone());
    }
    Some(format!(
        "{ATTACHED_HEADER}: {}\r\n",
        engine.encode(fields.join("\0"))
    ))
}

/// An attached item's properties and categories, read back from its header.
pub fn from_attached_header(value: &str) -> (ItemProps, Vec<String>) {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let clean: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let Some(text) = engine
        .decode(clean)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return (ItemProps::default(), Vec::new());
    };
    let parts: Vec<&str> = text.split('\0').collect();
    let (mut props, mut categories) = (Vec::new(), Vec::new());
    for pair in parts.chunks(2) {
        match pair {
            [k, v] if k.starts_with("p ") => {
                if let Ok(value) = engine.decode(v) {
                    props.push((k[2..].to_string(), value));
                }
            }
            ["c", c] => categories.push(c.to_string()),
            _ => {}
        }
    }
    (ItemProps(props), categories)
}

/// The properties an item has after `edits`, from those it has.
pub fn apply(current: ItemProps, edits: &[Edit]) -> Vec<Property> {
    let mut out = current.0;
    for e in edits {
        match e {
            Edit::Set((k, v)) => {
                out.retain(|(n, _)| n != k);
                out.push((k.clone(), v.clone()));
            }
            Edit::Remove(k) => out.retain(|(n, _)| n != k),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::xml::parse;

    fn el(xml: &str) -> Element {
        parse(xml.as_bytes()).unwrap()
    }

    #[test]
    fn one_name_for_every_spelling_of_a_property() {
        let by_name = Extended {
            distinguished_set: Some("PublicStrings".into()),
            name: Some("Color".into()),
            ..Extended::default()
        };
        let by_guid = Extended {
            set_id: Some("{00020329-0000-0000-C000-000000000046}".into()),
            name: Some("Color".into()),
            ..Extended::default()
        };
        assert_eq!(key(&by_name), key(&by_guid));
        let reminder = Extended {
            distinguished_set: Some("Common".into()),
            id: Some(0x8503),
            ..Extended::default()
        };
        assert_eq!(
            key(&reminder).as_deref(),
            Some(field_by_uri("item:ReminderIsSet").unwrap().key)
        );
        assert_eq!(key(&Extended::default()), None);
        let unknown_set = Extended {
            distinguished_set: Some("Nope".into()),
            id: Some(1),
            ..Extended::default()
        };
        assert_eq!(key(&unknown_set), None);
    }

    #[test]
    fn fields_and_extended_properties_of_a_new_item() {
        let item = el(
            r#"<Message><Subject>s</Subject><Sensitivity>Confidential</Sensitivity>
            <ReminderIsSet>true</ReminderIsSet><ReminderMinutesBeforeStart>251</ReminderMinutesBeforeStart>
            <ReminderDueBy>2026-12-07T06:00:00+01:00</ReminderDueBy>
            <ExtendedProperty><ExtendedFieldURI PropertyTag="0x1090" PropertyType="Integer"/><Value>2</Value></ExtendedProperty>
            <ExtendedProperty><ExtendedFieldURI DistinguishedPropertySetId="PublicStrings" PropertyName="Tags" PropertyType="StringArray"/><Values><Value>a</Value><Value>b c</Value></Values></ExtendedProperty>
            </Message>"#,
        );
        let props = ItemProps::new(of_new_item(&item).unwrap());
        assert_eq!(
            props.field_text("item:Sensitivity").as_deref(),
            Some("Confidential")
        );
        assert_eq!(
            props.field_text("item:ReminderIsSet").as_deref(),
            Some("true")
        );
        assert_eq!(
            props
                .field_text("item:ReminderMinutesBeforeStart")
                .as_deref(),
            Some("251")
        );
        assert_eq!(
            props.field_text("item:ReminderDueBy").as_deref(),
            Some("2026-12-07T05:00:00Z")
        );
        assert_eq!(props.field_text("item:Culture"), None);
        assert_eq!(props.0.len(), 6);
        assert_eq!(flag_status(Some(&props), true), 2);
        assert_eq!(flag_status(Some(&props), false), 0, "IMAP unflagged it");
        let tags = Extended {
            distinguished_set: Some("PublicStrings".into()),
            name: Some("Tags".into()),
            kind: "StringArray".into(),
            ..Extended::default()
        };
        let v = props.extended(&tags).unwrap();
        assert!(v.is_array());
        assert_eq!(v.values, ["a", "b c"]);
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            "<Message><Sensitivity>Secret</Sensitivity></Message>",
            "<Message><ReminderIsSet>maybe</ReminderIsSet></Message>",
            "<Message><ReminderDueBy>soon</ReminderDueBy></Message>",
            r#"<Message><ExtendedProperty><ExtendedFieldURI PropertyTag="0x3001" PropertyType="Integer"/><Value>x</Value></ExtendedProperty></Message>"#,
            r#"<Message><ExtendedProperty><ExtendedFieldURI PropertyTag="0x3001" PropertyType="StringArray"/><Value>x</Value></ExtendedProperty></Message>"#,
            r#"<Message><ExtendedProperty><ExtendedFieldURI PropertyType="String"/><Value>x</Value></ExtendedProperty></Message>"#,
        ] {
            assert!(of_new_item(&el(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_attached_items_header_round_trips() {
        let props = vec![("tag:0036".to_string(), b"Integer\x002".to_vec())];
        let cats = vec!["Red".to_string(), "a b".to_string()];
        let line = attached_header(&props, &cats).unwrap();
        let value = line
            .strip_prefix(&format!("{ATTACHED_HEADER}: "))
            .unwrap()
            .trim_end();
        let (back, back_cats) = from_attached_header(value);
        assert_eq!(
            back.field_text("item:Sensitivity").as_deref(),
            Some("Private")
        );
        assert_eq!(back_cats, cats);
        assert!(attached_header(&[], &[]).is_none());
        assert!(from_attached_header("!!").1.is_empty());
    }

    #[test]
    fn update_edits_set_and_remove() {
        let set = el(
            r#"<SetItemField><FieldURI FieldURI="message:IsResponseRequested"/><Message><IsResponseRequested>1</IsResponseRequested></Message></SetItemField>"#,
        );
        let path = Path::Field("message:IsResponseRequested".into());
        assert_eq!(
            edit(&set, &path),
            Some(Ok(Edit::Set((
                "tag:0063".into(),
                b"Boolean\0true".to_vec()
            ))))
        );
        let del = el(
            r#"<DeleteItemField><ExtendedFieldURI PropertyTag="0x3001" PropertyType="String"/></DeleteItemField>"#,
        );
        let path = Path::parse(del.child("ExtendedFieldURI").unwrap()).unwrap();
        assert_eq!(edit(&del, &path), Some(Ok(Edit::Remove("tag:3001".into()))));
        let subject = Path::Field("item:Subject".into());
        assert_eq!(edit(&set, &subject), None, "kept in the message");
        let computed = el(r#"<ExtendedFieldURI PropertyTag="0x0E23" PropertyType="Integer"/>"#);
        assert!(!is_stored(&Path::parse(&computed).unwrap()));
    }
}
