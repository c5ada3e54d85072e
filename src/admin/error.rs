//! Admin API errors in AWS JSON 1.1 form: `__type` + `message`, HTTP status as AWS.

use crate::net::http::HttpResponse;

/// An error answered to an admin API client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The AWS error type, e.g. `EntityNotFoundException`.
    pub kind: &'static str,
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: &'static str, status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            status,
            message: message.into(),
        }
    }

    /// A WorkMail service error (all are HTTP 400 in the model).
    pub fn workmail(kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(kind, 400, message)
    }

    pub fn invalid_parameter(message: impl Into<String>) -> ApiError {
        ApiError::workmail("InvalidParameterException", message)
    }

    /// Input that is not the JSON the operation expects.
    pub fn serialization(message: impl Into<String>) -> ApiError {
        ApiError::new("SerializationException", 400, message)
    }

    /// A required member is missing or has the wrong type.
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new("ValidationException", 400, message)
    }

    /// The JSON body AWS SDKs parse.
    pub fn to_response(&self, request_id: &str) -> HttpResponse {
        let body = serde_json::json!({ "__type": self.kind, "message": self.message });
        let mut r = HttpResponse::new(self.status, "application/x-amz-json-1.1", body.to_string());
        r.headers.push(("x-amzn-requestid", request_id.to_string()));
        r.headers.push(("x-amzn-errortype", self.kind.to_string()));
        r
    }
}
