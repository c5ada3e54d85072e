//! The admin API's HTTP handler: SigV4 check, `X-Amz-Target` to an action, body to
//! a JSON object, then the action; every outcome is an AWS JSON 1.1 response with
//! an `x-amzn-RequestId`.

use std::sync::Arc;

use super::actions;
use super::error::ApiError;
use super::input;
use super::sigv4::{self, RequestParts};
use super::state::AdminState;
use crate::net::http::{Handler, HandlerFuture, HttpRequest, HttpResponse};

/// The `X-Amz-Target` prefix of every WorkMail action.
const TARGET_PREFIX: &str = "WorkMailService.";
/// The AWS JSON 1.1 content type, for answers.
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The WorkMail admin API, mounted on the `https` router.
pub struct AdminApi {
    state: Arc<AdminState>,
}

impl AdminApi {
    /// An API over `state` that accepts requests signed by any of the keys its
    /// secrets hold at the time of the request.
    pub fn new(state: Arc<AdminState>) -> AdminApi {
        AdminApi { state }
    }

    /// Answers one request; never panics on input and never answers 500 for it.
    pub async fn answer(&self, req: &HttpRequest) -> HttpResponse {
        let request_id = uuid::Uuid::new_v4().hyphenated().to_string();
        let ctx = super::context::RequestContext {
            request_id: request_id.clone(),
            source_ip: req.peer.ip().to_canonical(),
            user_agent: req.header("user-agent").map(str::to_string),
        };
        match super::context::scope(ctx, self.process(req)).await {
            Ok(output) => {
                let mut r = HttpResponse::new(200, CONTENT_TYPE, output.to_string());
                r.headers.push(("x-amzn-requestid", request_id));
                r
            }
            Err(e) => {
                if e.status >= 500 {
                    tracing::error!(error = %e.message, kind = e.kind, "admin API internal failure");
                }
                e.to_response(&request_id)
            }
        }
    }

    async fn process(&self, req: &HttpRequest) -> Result<serde_json::Value, ApiError> {
        self.authenticate(req)?;
        let target = req.header("x-amz-target");
        let action = target
            .and_then(|t| t.strip_prefix(TARGET_PREFIX))
            .and_then(actions::lookup)
            .or_else(|| {
                target
                    .and_then(|t| t.strip_prefix(actions::EXTENSION_PREFIX))
                    .and_then(actions::lookup_extension)
            })
            .ok_or_else(|| ApiError::new("UnknownOperationException", 400, ""))?;
        let body = input::object(&req.body)?;
        action(self.state.clone(), body).await
    }

    fn authenticate(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let parts = RequestParts {
            method: &req.method,
            path: &req.path,
            query: &req.query,
            headers: &req.headers,
            body: &req.body,
        };
        let keys = self.state.secrets.admin_keys();
        let secret_for = |id: &str| {
            keys.iter()
                .find(|k| k.access_key_id == id)
                .map(|k| k.secret_access_key.as_str())
        };
        sigv4::verify(&parts, secret_for, crate::clock::now_secs())
            .map(|_| ())
            .map_err(signature_error)
    }
}

/// Largest admin API request body: WorkMail requests are small JSON objects, so a
/// client may not make the daemon buffer a message-sized body.
pub const MAX_BODY: usize = 1024 * 1024;

impl Handler for AdminApi {
    /// Refuses a request whose `Authorization` header is missing, malformed or
    /// names no known key before its body is read, and caps the body at [`MAX_BODY`].
    fn admit(&self, head: &HttpRequest, max_body: usize) -> Result<usize, HttpResponse> {
        let keys = self.state.secrets.admin_keys();
        let known = |id: &str| keys.iter().any(|k| k.access_key_id == id);
        match sigv4::check_head(&head.headers, known) {
            Ok(()) => Ok(max_body.min(MAX_BODY)),
            Err(e) => {
                let request_id = uuid::Uuid::new_v4().hyphenated().to_string();
                Err(signature_error(e).to_response(&request_id))
            }
        }
    }

    fn handle(self: Arc<Self>, req: HttpRequest) -> HandlerFuture {
        Box::pin(async move { self.answer(&req).await })
    }
}

/// A signature failure as the AWS error type clients expect.
fn signature_error(e: sigv4::SigError) -> ApiError {
    let (kind, status) = e.aws_type();
    ApiError::new(kind, status, e.to_string())
}
