//! The EWS endpoint (`/EWS/Exchange.asmx`): authenticates each request, reads its
//! envelope and hands the operation to [`super::ops`], answering every failure as a
//! client expects it (401 with only the schemes we serve, SOAP faults with EWS
//! codes and HTTP 200, never a 500 for anything a client sent).

use std::net::IpAddr;
use std::sync::Arc;

use super::auth::{BasicLogins, BasicOutcome, Credentials, credentials};
use super::codes::ResponseCode;
use super::context::{Context, Who};
use super::envelope::{self, ConnectingSid, Fault};
use crate::access::AccessEngine;
use crate::access::login::{Authenticator, ImpersonationRefusal};
use crate::directory::Directory;
use crate::net::http::{BodyRefusal, Handler, HandlerFuture, HttpRequest, HttpResponse};
use crate::store::Backend;

/// Bodies read before the login is known to name someone: enough for any
/// request but a message upload.
const UNKNOWN_LOGIN_BODY: usize = 64 * 1024;

/// Shared by every EWS request.
pub struct Ews {
    pub store: Arc<dyn Backend>,
    pub directory: Arc<Directory>,
    pub auth: Arc<Authenticator>,
    pub access: Arc<AccessEngine>,
    pub basic: BasicLogins,
    /// `limits.max_message_size`: the largest message CreateItem accepts.
    pub max_message_size: u64,
    /// Live notification subscriptions.
    pub subscriptions: super::subscriptions::Subscriptions,
    /// Requests and latency per operation.
    pub metrics: super::metrics::EwsMetrics,
    /// The submission path messages are sent through (SMTP's).
    pub submit: Arc<dyn crate::submission::Submit>,
    /// Where clients reach this server (the WSDL names the EWS URL).
    pub site: super::autodiscover::Site,
}

const XML: &str = "text/xml; charset=utf-8";

/// 401 naming only the schemes that work (exchangelib prefers NTLM over Basic when
/// both are offered, so nothing else is listed).
fn unauthorized(bad_token: bool) -> HttpResponse {
    let mut r = HttpResponse::new(401, "text/plain; charset=utf-8", "401 Unauthorized\n");
    if bad_token {
        r.headers
            .push(("www-authenticate", "Bearer error=\"invalid_token\"".into()));
    }
    r.headers
        .push(("www-authenticate", "Basic realm=\"EWS\"".into()));
    r
}

fn declared_length(head: &HttpRequest) -> Option<usize> {
    head.header("content-length")?.trim().parse().ok()
}

fn fault(f: Fault) -> HttpResponse {
    HttpResponse::new(200, XML, envelope::fault(&f))
}

impl Handler for Ews {
    fn admit(&self, head: &HttpRequest, max_body: usize) -> Result<usize, HttpResponse> {
        let limit = match head.header("authorization").and_then(credentials) {
            None => return Err(unauthorized(false)),
            Some(Credentials::Bearer(token)) => {
                match self.access.verify_token(&token, crate::clock::now_ms_u64()) {
                    Ok(_) => max_body,
                    Err(_) => return Err(unauthorized(true)),
                }
            }
            Some(Credentials::Basic { login, .. }) => {
                if self.directory.login_lookup(&login).is_none() {
                    let small = max_body.min(UNKNOWN_LOGIN_BODY);
                    if declared_length(head).is_some_and(|n| n > small) {
                        return Err(unauthorized(false));
                    }
                    small
                } else {
                    max_body
                }
            }
        };
        // A body announced beyond the limit is refused before any of it is read.
        if declared_length(head).is_some_and(|n| n > limit) {
            return Err(self.refuse_body(BodyRefusal::TooLarge));
        }
        Ok(limit)
    }

    /// A body the router could not read gets the EWS answer (a fault with HTTP
    /// 200), never a bare HTTP error, which EWS clients take for a lost connection.
    fn refuse_body(&self, why: BodyRefusal) -> HttpResponse {
        fault(match why {
            BodyRefusal::TooLarge => Fault::new(
                ResponseCode::ErrorMessageSizeExceeded,
                "The request is larger than this server accepts.",
            ),
            BodyRefusal::TooSlow | BodyRefusal::Unreadable => Fault::new(
                ResponseCode::ErrorSchemaValidation,
                "The request body did not arrive whole.",
            ),
        })
    }

    fn handle(self: Arc<Self>, req: HttpRequest) -> HandlerFuture {
        Box::pin(async move { Ews::answer(&self, req).await })
    }
}

impl Ews {
    async fn answer(self: &Arc<Self>, req: HttpRequest) -> HttpResponse {
        let ip = req.peer.ip().to_canonical();
        let user_agent = req.header("user-agent").map(str::to_string);
        let Some(creds) = req.header("authorization").and_then(credentials) else {
            return unauthorized(false);
        };
        let user = match &creds {
            Credentials::Basic { login, password } => {
                match self
                    .basic
                    .check(login, password, ip, user_agent.as_deref())
                    .await
                {
                    BasicOutcome::Ok(session) => Some(session),
                    BasicOutcome::Failed => return unauthorized(false),
                    BasicOutcome::Throttled(d) => return busy(d),
                }
            }
            Credentials::Bearer(_) => None,
        };
        if req.method.eq_ignore_ascii_case("GET") {
            return self.get(&req);
        }
        if req.method != "POST" || !req.path.eq_ignore_ascii_case("/EWS/Exchange.asmx") {
            return HttpResponse::new(405, "text/plain; charset=utf-8", "405 Method Not Allowed\n");
        }
        let request = match super::xml::parse(&req.body) {
            Ok(root) => match envelope::parse_request(root) {
                Ok(r) => r,
                Err(f) => return fault(f),
            },
            Err(e) => {
                return fault(Fault::new(
                    ResponseCode::ErrorSchemaValidation,
                    e.to_string(),
                ));
            }
        };
        let who = match (user, &creds) {
            (Some(session), _) => match &request.impersonation {
                None => Who::User(session),
                Some(sid) => {
                    match self.self_impersonation(&session.org_id, &session.user_id, sid) {
                        true => Who::User(session),
                        false => {
                            return fault(Fault::new(
                                ResponseCode::ErrorImpersonationDenied,
                                "Users authenticated with a password cannot impersonate; use an impersonation role's token.",
                            ));
                        }
                    }
                }
            },
            (None, Credentials::Bearer(token)) => {
                match self.role(token, &request.impersonation, ip) {
                    Ok(who) => who,
                    Err(response) => return response,
                }
            }
            (None, Credentials::Basic { .. }) => return unauthorized(false),
        };
        if let Some((org, mailbox)) = who.mailbox() {
            let quota = self.directory.mailbox_quota_bytes(org, mailbox);
            if self.store.create_mailbox(mailbox, quota).await.is_err() {
                return fault(Fault::new(
                    ResponseCode::ErrorServerBusy,
                    "The mailbox is not available right now.",
                ));
            }
        }
        let ctx = Context {
            ews: self,
            who,
            ip,
            user_agent,
        };
        let started = std::time::Instant::now();
        let operation = super::ops::served(&request.op.name);
        let answer = super::ops::dispatch(ctx, &request.op).await;
        self.metrics
            .observe(operation, started.elapsed().as_secs_f64());
        let mut response = match answer {
            super::ops::Answer::Document(body) => HttpResponse::new(200, XML, body),
            super::ops::Answer::Stream(chunks) => HttpResponse::streaming(200, XML, chunks),
        };
        // Clients that keep subscriptions on one backend (exchangelib, the EWS
        // Managed API) ask for affinity and send the cookie back; this server is
        // its own backend, so the cookie names it and changes nothing.
        if req
            .header("x-preferserveraffinity")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            response.headers.push((
                "set-cookie",
                "X-BackEndOverrideCookie=mailgate; path=/; secure; HttpOnly".into(),
            ));
        }
        response
    }

    /// `GET` on an EWS path (already authenticated): the WSDL, the redirect to it
    /// from the endpoint, or the REST photo form.
    fn get(&self, req: &HttpRequest) -> HttpResponse {
        let path = req.path.to_ascii_lowercase();
        let base = self.site.base(req.header("host"));
        if path == super::wsdl::WSDL_PATH.to_ascii_lowercase() {
            let doc = super::wsdl::document(super::ops::SERVED, &base.ews_url());
            return HttpResponse::new(200, XML, doc);
        }
        if path == "/ews/exchange.asmx" {
            return super::wsdl::redirect(&base.url());
        }
        if path == "/ews/exchange.asmx/s/getuserphoto" {
            return super::ops::photo::rest(&req.query);
        }
        HttpResponse::new(404, "text/plain; charset=utf-8", "404 Not Found\n")
    }

    /// A Basic user naming their own mailbox in `ExchangeImpersonation` (DavMail
    /// and Evolution may) is simply themself.
    fn self_impersonation(&self, org_id: &str, user_id: &str, sid: &ConnectingSid) -> bool {
        match sid {
            ConnectingSid::Smtp(a) | ConnectingSid::PrincipalName(a) => matches!(
                self.directory.resolve_address(a),
                Some(crate::directory::Recipient::User { org, id }) if org == org_id && id == user_id
            ),
            ConnectingSid::Sid(_) => false,
        }
    }

    fn role(
        &self,
        token: &str,
        target: &Option<ConnectingSid>,
        ip: IpAddr,
    ) -> Result<Who, HttpResponse> {
        let now = crate::clock::now_ms_u64();
        let address = match target {
            None => {
                return self
                    .access
                    .verify_token(token, now)
                    .map(|v| Who::RoleWithoutTarget { org_id: v.org })
                    .map_err(|_| unauthorized(true));
            }
            Some(ConnectingSid::Smtp(a) | ConnectingSid::PrincipalName(a)) => a,
            Some(ConnectingSid::Sid(_)) => {
                return Err(fault(Fault::new(
                    ResponseCode::ErrorImpersonationFailed,
                    "ConnectingSID by SID is not supported: use PrimarySmtpAddress.",
                )));
            }
        };
        match self.auth.impersonate(token, address, ip, now) {
            Ok(imp) => Ok(Who::Role {
                imp,
                token: token.to_string(),
                target: address.clone(),
            }),
            Err(ImpersonationRefusal::Token(_)) => Err(unauthorized(true)),
            Err(ImpersonationRefusal::Rules) => Err(unauthorized(false)),
            Err(ImpersonationRefusal::NoMailbox(a)) => Err(fault(Fault::new(
                ResponseCode::ErrorNonExistentMailbox,
                format!("No mailbox with the address {a}."),
            ))),
            Err(ImpersonationRefusal::Denied) => Err(fault(Fault::new(
                ResponseCode::ErrorImpersonateUserDenied,
                "The account does not have permission to impersonate the requested user.",
            ))),
        }
    }
}

/// Too many failed logins: EWS's own back-off answer, which Thunderbird and
/// exchangelib both honour.
fn busy(retry: std::time::Duration) -> HttpResponse {
    let ms = retry.as_millis().clamp(1000, 600_000).to_string();
    let f = Fault::new(
        ResponseCode::ErrorServerBusy,
        "Too many failed logins; try again later.",
    );
    let body = envelope::fault_with_backoff(&f, &ms);
    HttpResponse::new(200, XML, body)
}
