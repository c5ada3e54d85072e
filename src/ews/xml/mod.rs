//! XML in and out of EWS: requests read into a bounded element tree
//! ([`read`]), responses written by a builder that cannot emit invalid XML
//! ([`write`]).

pub mod read;
pub mod write;

pub use read::{Element, XmlError, parse};
pub use write::Xml;
