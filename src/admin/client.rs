//! `mailgate admin <Action>`: a small SigV4-signing HTTPS client for the admin API,
//! using the generated credentials and dev CA of a data directory by default.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::credentials::{self, CredentialsError};
use super::sigv4::{self, RequestParts};

/// Why `mailgate admin` could not make its call; each message names what failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The command line is wrong (a flag, a value, `--json`): exit EX_USAGE.
    #[error("{0}")]
    Usage(String),
    /// Where to connect is unknown (`--endpoint`, `run/ports.json`).
    #[error("{0}")]
    Endpoint(String),
    /// The credentials file is missing or damaged.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The CA file to trust cannot be read or holds a bad certificate.
    #[error("{0}")]
    Ca(String),
    /// Connecting, TLS, signing, sending, or reading the answer failed.
    #[error("{0}")]
    Connection(String),
}

/// Where and how to call the API.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `https://host:port`; default: 127.0.0.1 and the `https` port of `data_dir/run/ports.json`.
    pub endpoint: Option<String>,
    pub data_dir: PathBuf,
    /// CA to trust; default `data_dir/tls/ca.pem`.
    pub ca: Option<PathBuf>,
    /// Shared-credentials file; default `data_dir/admin-credentials`.
    pub credentials: Option<PathBuf>,
    pub region: String,
}

/// Turns `--organization-id m-1 --max-results 5` into `{"OrganizationId":"m-1","MaxResults":5}`,
/// merged over an optional `--json` object. Values that parse as JSON are taken as JSON.
pub fn build_input(
    json: Option<&str>,
    flags: &[(String, String)],
) -> Result<serde_json::Value, ClientError> {
    let mut input = match json {
        Some(text) => {
            serde_json::from_str(text).map_err(|e| ClientError::Usage(format!("--json: {e}")))?
        }
        None => serde_json::json!({}),
    };
    let map = input
        .as_object_mut()
        .ok_or_else(|| ClientError::Usage("--json must be a JSON object".into()))?;
    for (flag, value) in flags {
        let member: String = flag
            .split('-')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let mut c = p.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect();
        let v = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.clone()));
        map.insert(member, v);
    }
    Ok(input)
}

/// A parsed `mailgate admin <Action> ...` command line.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Where and how to call.
    pub options: ClientOptions,
    /// The JSON input built from `--json` and the friendly flags.
    pub input: serde_json::Value,
}

/// Splits the arguments after the action into the client's own options
/// (`--data-dir`, `--endpoint`, `--ca`, `--credentials`, `--region`, `--json`)
/// and friendly member flags (`--organization-id m-1` → `OrganizationId`).
pub fn parse_args(args: &[String]) -> Result<Invocation, ClientError> {
    let mut options = ClientOptions {
        endpoint: None,
        data_dir: PathBuf::from("./data"),
        ca: None,
        credentials: None,
        region: "local".into(),
    };
    let (mut json, mut flags) = (None, Vec::new());
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let name = arg
            .strip_prefix("--")
            .ok_or_else(|| ClientError::Usage(format!("expected --flag, got {arg:?}")))?;
        let (name, value) = match name.split_once('=') {
            Some((n, v)) => (n, v.to_string()),
            None => (
                name,
                it.next()
                    .ok_or_else(|| ClientError::Usage(format!("--{name} needs a value")))?
                    .clone(),
            ),
        };
        match name {
            "json" => json = Some(value),
            "data-dir" => options.data_dir = PathBuf::from(value),
            "endpoint" => options.endpoint = Some(value),
            "ca" => options.ca = Some(PathBuf::from(value)),
            "credentials" => options.credentials = Some(PathBuf::from(value)),
            "region" => options.region = value,
            member => flags.push((member.to_string(), value)),
        }
    }
    let input = build_input(json.as_deref(), &flags)?;
    Ok(Invocation { options, input })
}

fn endpoint(opts: &ClientOptions) -> Result<(String, u16), ClientError> {
    if let Some(url) = &opts.endpoint {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| ClientError::Endpoint("--endpoint must start with https://".into()))?;
        let hostport = rest.trim_end_matches('/');
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_matches(|c| c == '[' || c == ']').to_string(),
                p.parse()
                    .map_err(|_| ClientError::Endpoint("bad port".into()))?,
            ),
            None => (hostport.to_string(), 443),
        };
        return Ok((host, port));
    }
    let ports_file = opts.data_dir.join("run/ports.json");
    let text = std::fs::read_to_string(&ports_file).map_err(|e| {
        ClientError::Endpoint(format!(
            "{}: {e} (is the daemon running? or pass --endpoint)",
            ports_file.display()
        ))
    })?;
    let ports: std::collections::BTreeMap<String, u16> = serde_json::from_str(&text)
        .map_err(|e| ClientError::Endpoint(format!("{}: {e}", ports_file.display())))?;
    let port = ports
        .get("https")
        .ok_or_else(|| ClientError::Endpoint("the https listener is not enabled".into()))?;
    Ok(("127.0.0.1".into(), *port))
}

fn tls_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let pem = std::fs::read(ca).map_err(|e| ClientError::Ca(format!("{}: {e}", ca.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| ClientError::Ca(format!("{}: {e:?}", ca.display())))?;
        roots
            .add(cert)
            .map_err(|e| ClientError::Ca(format!("{}: {e}", ca.display())))?;
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// The `X-Amz-Target` of a command: a WorkMail action name as is, or one of
/// mailgate's own commands (`create-personal-access-token`) in its own namespace.
pub fn target(action: &str) -> String {
    match super::actions::EXTENSIONS
        .iter()
        .find(|(cmd, _)| *cmd == action)
    {
        Some((_, name)) => format!("{}{name}", super::actions::EXTENSION_PREFIX),
        None => format!("WorkMailService.{action}"),
    }
}

/// Calls `action` with `input`; returns the HTTP status and the response body.
pub async fn call(
    opts: &ClientOptions,
    action: &str,
    input: &serde_json::Value,
) -> Result<(u16, String), ClientError> {
    let (host, port) = endpoint(opts)?;
    let cred_path = opts
        .credentials
        .clone()
        .unwrap_or_else(|| opts.data_dir.join("admin-credentials"));
    let (key, _) = credentials::load_existing(&cred_path)?;
    let ca = opts
        .ca
        .clone()
        .unwrap_or_else(|| opts.data_dir.join("tls/ca.pem"));
    let body = input.to_string();
    let host_header = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let now = crate::clock::now_secs();
    let mut headers = vec![
        ("host".to_string(), host_header),
        ("x-amz-date".to_string(), sigv4::format_amz_date(now)),
        ("x-amz-target".to_string(), target(action)),
        (
            "content-type".to_string(),
            "application/x-amz-json-1.1".to_string(),
        ),
    ];
    let parts = RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: body.as_bytes(),
    };
    let auth = sigv4::sign(
        &parts,
        &key.access_key_id,
        &key.secret_access_key,
        &opts.region,
    )
    .map_err(|e| ClientError::Connection(e.to_string()))?;
    headers.push(("authorization".into(), auth));

    let mut request = String::from("POST / HTTP/1.1\r\n");
    for (k, v) in &headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));

    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| ClientError::Connection(format!("{host}:{port}: {e}")))?;
    let name = ServerName::try_from(host.clone())
        .map_err(|e| ClientError::Connection(format!("{host}: {e}")))?;
    let mut tls = tokio_rustls::TlsConnector::from(tls_config(&ca)?)
        .connect(name, tcp)
        .await
        .map_err(|e| ClientError::Connection(format!("TLS to {host}:{port}: {e}")))?;
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| ClientError::Connection(e.to_string()))?;
    let mut raw = Vec::new();
    // A peer that closes without close_notify still gave us the whole response.
    let _ = tls.read_to_end(&mut raw).await;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<(u16, String), ClientError> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| ClientError::Connection("incomplete HTTP response".into()))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ClientError::Connection("bad HTTP status line".into()))?;
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_pascal_case_members() {
        let flags = vec![
            ("organization-id".to_string(), "m-1".to_string()),
            ("max-results".to_string(), "5".to_string()),
            ("name".to_string(), "alice".to_string()),
        ];
        let v = build_input(Some(r#"{"Extra": true}"#), &flags).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"OrganizationId": "m-1", "MaxResults": 5, "Name": "alice", "Extra": true})
        );
        assert!(build_input(Some("[1]"), &[]).is_err());
        assert!(build_input(Some("{"), &[]).is_err());
    }

    #[test]
    fn client_options_and_member_flags_are_told_apart() {
        let args: Vec<String> = [
            "--data-dir",
            "/d",
            "--organization-id=m-1",
            "--region",
            "r1",
            "--json",
            r#"{"Name":"x"}"#,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let inv = parse_args(&args).unwrap();
        assert_eq!(inv.options.data_dir, PathBuf::from("/d"));
        assert_eq!(inv.options.region, "r1");
        assert_eq!(
            inv.input,
            serde_json::json!({"OrganizationId": "m-1", "Name": "x"})
        );
        assert!(parse_args(&["--name".to_string()]).is_err());
        assert!(parse_args(&["stray".to_string()]).is_err());
    }

    #[test]
    fn extension_commands_have_their_own_namespace() {
        assert_eq!(target("ListUsers"), "WorkMailService.ListUsers");
        assert_eq!(
            target("create-personal-access-token"),
            "MailgateService.CreatePersonalAccessToken"
        );
        assert_eq!(
            target("CreatePersonalAccessToken"),
            "WorkMailService.CreatePersonalAccessToken",
            "one spelling per command"
        );
    }

    #[test]
    fn responses_are_split_into_status_and_body() {
        let raw = b"HTTP/1.1 400 Bad Request\r\ncontent-type: x\r\n\r\n{\"__type\":\"X\"}";
        assert_eq!(
            parse_response(raw).unwrap(),
            (400, "{\"__type\":\"X\"}".to_string())
        );
        assert!(parse_response(b"garbage").is_err());
    }
}
