//! `ItemShape` / `FolderShape`: which properties a response carries. The base shape
//! (IdOnly, Default, AllProperties) plus `AdditionalProperties` paths, of which
//! every FieldURI is accepted on every item type (exchangelib asks for calendar
//! fields on plain messages; refusing one fails the whole call).

use crate::ews::xml::Element;

/// `BaseShape`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    IdOnly,
    Default,
    AllProperties,
}

/// `BodyType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    Best,
    Html,
    Text,
}

/// An extended (MAPI) property named by a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extended {
    pub tag: Option<u32>,
    pub set_id: Option<String>,
    pub distinguished_set: Option<String>,
    pub id: Option<u32>,
    pub name: Option<String>,
    pub kind: String,
}

impl Extended {
    /// Reads an `ExtendedFieldURI` element.
    pub fn parse(el: &Element) -> Extended {
        let num = |s: &str| {
            let s = s.trim();
            match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            }
        };
        Extended {
            tag: el.attr("PropertyTag").and_then(num),
            set_id: el.attr("PropertySetId").map(str::to_string),
            distinguished_set: el.attr("DistinguishedPropertySetId").map(str::to_string),
            id: el.attr("PropertyId").and_then(num),
            name: el.attr("PropertyName").map(str::to_string),
            kind: el.attr("PropertyType").unwrap_or("String").to_string(),
        }
    }

    /// Writes the attributes back as the request named them.
    pub fn attrs(&self) -> Vec<(&'static str, String)> {
        let mut a = Vec::new();
        if let Some(s) = &self.distinguished_set {
            a.push(("DistinguishedPropertySetId", s.clone()));
        }
        if let Some(s) = &self.set_id {
            a.push(("PropertySetId", s.clone()));
        }
        if let Some(t) = self.tag {
            a.push(("PropertyTag", format!("0x{t:x}")));
        }
        if let Some(n) = &self.name {
            a.push(("PropertyName", n.clone()));
        }
        if let Some(i) = self.id {
            a.push(("PropertyId", i.to_string()));
        }
        a.push(("PropertyType", self.kind.clone()));
        a
    }
}

/// One requested property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Path {
    Field(String),
    Indexed { uri: String, index: String },
    Extended(Extended),
}

impl Path {
    /// Reads a `FieldURI`, `IndexedFieldURI` or `ExtendedFieldURI` element.
    pub fn parse(el: &Element) -> Option<Path> {
        match el.name.as_str() {
            "FieldURI" => Some(Path::Field(el.attr("FieldURI")?.to_string())),
            "IndexedFieldURI" => Some(Path::Indexed {
                uri: el.attr("FieldURI")?.to_string(),
                index: el.attr("FieldIndex").unwrap_or("").to_string(),
            }),
            "ExtendedFieldURI" => Some(Path::Extended(Extended::parse(el))),
            _ => None,
        }
    }
}

/// What a response carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub base: Base,
    pub additional: Vec<Path>,
    pub include_mime: bool,
    pub body_type: BodyType,
}

impl Shape {
    /// Reads an `ItemShape` or `FolderShape` (absent: IdOnly).
    pub fn parse(el: Option<&Element>) -> Shape {
        let Some(el) = el else {
            return Shape {
                base: Base::IdOnly,
                additional: Vec::new(),
                include_mime: false,
                body_type: BodyType::Best,
            };
        };
        let base = match el.child_text("BaseShape") {
            Some("Default") => Base::Default,
            Some("AllProperties") => Base::AllProperties,
            _ => Base::IdOnly,
        };
        let additional = el
            .child("AdditionalProperties")
            .map(|a| a.children.iter().filter_map(Path::parse).collect())
            .unwrap_or_default();
        let body_type = match el.child_text("BodyType") {
            Some("HTML") => BodyType::Html,
            Some("Text") => BodyType::Text,
            _ => BodyType::Best,
        };
        Shape {
            base,
            additional,
            include_mime: super::truthy(el.child_text("IncludeMimeContent")),
            body_type,
        }
    }

    /// Whether the response carries `uri` (e.g. `folder:DisplayName`), given
    /// whether the Default shape includes it (AllProperties includes everything).
    pub fn wants(&self, uri: &str, in_default: bool) -> bool {
        match self.base {
            Base::AllProperties => true,
            Base::Default if in_default => true,
            _ => self.names(uri),
        }
    }

    /// Whether `uri` is named in AdditionalProperties (for properties no base
    /// shape includes, such as MimeContent).
    pub fn names(&self, uri: &str) -> bool {
        self.additional
            .iter()
            .any(|p| matches!(p, Path::Field(f) if f == uri))
    }

    /// The extended properties asked for.
    pub fn extended(&self) -> impl Iterator<Item = &Extended> {
        self.additional.iter().filter_map(|p| match p {
            Path::Extended(e) => Some(e),
            _ => None,
        })
    }
}
