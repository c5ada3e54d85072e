//! Request bodies to typed inputs: a JSON object, then serde with the member path
//! in every error, so a client learns which member was missing or mistyped.

use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Parses a body as a JSON object. Anything else is AWS's `SerializationException`.
/// An empty body counts as `{}` (the AWS CLI sends one for input-less calls).
pub fn object(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::serialization(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::serialization(format!("malformed JSON: {e}"))),
    }
}

/// Deserializes an action's input; a missing required member or a member of the
/// wrong type is a `ValidationException` naming the member.
pub fn parse<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let message = if path == "." {
            // A missing member is reported at the parent; serde names it in the message.
            format!("1 validation error detected: {inner}")
        } else {
            format!("1 validation error detected: Value at '{path}' failed: {inner}")
        };
        ApiError::validation(message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    #[allow(dead_code)]
    struct In {
        organization_id: String,
        max_results: Option<i64>,
    }

    #[test]
    fn errors_name_the_member() {
        let e = parse::<In>(serde_json::json!({})).unwrap_err();
        assert_eq!(e.kind, "ValidationException");
        assert!(e.message.contains("OrganizationId"), "{}", e.message);
        let e =
            parse::<In>(serde_json::json!({"OrganizationId": "m", "MaxResults": "x"})).unwrap_err();
        assert!(e.message.contains("MaxResults"), "{}", e.message);
    }

    #[test]
    fn only_objects_are_accepted() {
        assert_eq!(object(b"[1]").unwrap_err().kind, "SerializationException");
        assert_eq!(object(b"{").unwrap_err().kind, "SerializationException");
        assert!(object(b"").is_ok());
        assert!(object(b"{\"A\":1}").is_ok());
    }
}
