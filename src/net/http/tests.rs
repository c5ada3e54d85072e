//! Router tests: path matching (exact, prefix, any case, longest wins, guards),
//! per-route body limits, keep-alive, and chunked streaming on a real connection.

use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// Answers with its name and the body length it saw.
struct Named(&'static str);
impl Handler for Named {
    fn handle(self: Arc<Self>, req: HttpRequest) -> HandlerFuture {
        Box::pin(async move {
            HttpResponse::new(200, "text/plain", format!("{} {}", self.0, req.body.len()))
        })
    }
}

fn named(name: &'static str) -> Arc<dyn Handler> {
    Arc::new(Named(name))
}

fn head(method: &str, path: &str, headers: &[(&str, &str)]) -> HttpRequest {
    HttpRequest {
        method: method.into(),
        path: path.into(),
        query: String::new(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: Bytes::new(),
        peer: "127.0.0.1:1".parse().unwrap(),
    }
}

/// The handler name a request head is routed to.
fn routed(router: &Router, method: &str, path: &str) -> Option<String> {
    let route = router.find(&head(method, path, &[]))?;
    Some(route.path.clone())
}

fn ews_router() -> Router {
    Router::new(vec![
        Route::exact("/", named("admin")).when(|h| h.method == "POST"),
        Route::prefix("/EWS/", named("ews")),
        Route::prefix("/autodiscover/", named("autodiscover")),
        Route::prefix("/autodiscover/autodiscover.json/", named("json")),
        Route::exact("/autodiscover/autodiscover.xml", named("pox")),
    ])
}

#[test]
fn prefix_routes_ignore_letter_case() {
    let r = ews_router();
    for path in ["/EWS/Exchange.asmx", "/ews/exchange.asmx", "/Ews/", "/EWS/"] {
        assert_eq!(routed(&r, "POST", path).as_deref(), Some("/ews/"), "{path}");
    }
    assert_eq!(routed(&r, "POST", "/EWS"), None, "a prefix needs its slash");
    assert_eq!(
        routed(&r, "GET", "/AutoDiscover/AutoDiscover.SVC").as_deref(),
        Some("/autodiscover/")
    );
}

#[test]
fn longest_match_wins_and_exact_routes_are_exact() {
    let r = ews_router();
    assert_eq!(
        routed(
            &r,
            "GET",
            "/autodiscover/autodiscover.json/v1.0/a@example.test"
        )
        .as_deref(),
        Some("/autodiscover/autodiscover.json/")
    );
    assert_eq!(
        routed(&r, "POST", "/Autodiscover/Autodiscover.XML").as_deref(),
        Some("/autodiscover/autodiscover.xml")
    );
    assert_eq!(
        routed(&r, "POST", "/autodiscover/autodiscover.xml2").as_deref(),
        Some("/autodiscover/"),
        "the exact route does not take a longer path; the prefix does"
    );
    // An exact route beats a prefix of the same length.
    let r = Router::new(vec![
        Route::prefix("/a/", named("prefix")),
        Route::exact("/a/", named("exact")).when(|h| h.method == "GET"),
    ]);
    let route = r.find(&head("GET", "/a/", &[])).unwrap();
    assert_eq!(route.matching, PathMatch::Exact);
    let route = r.find(&head("GET", "/a/b", &[])).unwrap();
    assert_eq!(route.matching, PathMatch::Prefix);
}

#[test]
fn the_admin_api_stays_at_the_root_and_guards_apply() {
    let r = ews_router();
    assert_eq!(routed(&r, "POST", "/").as_deref(), Some("/"));
    assert_eq!(routed(&r, "GET", "/"), None, "the guard refuses GET");
    assert_eq!(
        routed(&r, "POST", "/other"),
        None,
        "/ is exact, not a prefix"
    );
    let r = Router::new(vec![
        Route::exact("/", named("admin")).when(|h| h.header("X-Amz-Target").is_some()),
    ]);
    assert!(
        r.find(&head("POST", "/", &[("x-amz-target", "W.A")]))
            .is_some()
    );
    assert!(r.find(&head("POST", "/", &[])).is_none());
}

/// Serves `router` on 127.0.0.1 port 0, one connection per accept.
async fn serve(router: Router) -> u16 {
    let router = Arc::new(router);
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = socket.accept().await.unwrap();
            let router = router.clone();
            tokio::spawn(router.serve_connection(tcp, peer, CancellationToken::new()));
        }
    });
    port
}

/// Reads one response with a `Content-Length` body: (status line, body).
async fn read_response(c: &mut BufReader<TcpStream>) -> (String, String) {
    let mut status = String::new();
    c.read_line(&mut status).await.unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        c.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    c.read_exact(&mut body).await.unwrap();
    (
        status.trim_end().to_string(),
        String::from_utf8(body).unwrap(),
    )
}

#[tokio::test]
async fn body_limits_are_per_route_on_a_kept_alive_connection() {
    let port = serve(Router::new(vec![
        Route::prefix("/small/", named("small")).max_body(4),
        Route::prefix("/large/", named("large")).max_body(1000),
    ]))
    .await;
    let mut c = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    let post = |path: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // Three requests on one connection: keep-alive.
    c.get_mut()
        .write_all(post("/large/x", "0123456789").as_bytes())
        .await
        .unwrap();
    assert_eq!(
        read_response(&mut c).await,
        ("HTTP/1.1 200 OK".into(), "large 10".into())
    );
    c.get_mut()
        .write_all(post("/SMALL/x", "0123").as_bytes())
        .await
        .unwrap();
    assert_eq!(
        read_response(&mut c).await,
        ("HTTP/1.1 200 OK".into(), "small 4".into())
    );
    c.get_mut()
        .write_all(post("/nowhere", "").as_bytes())
        .await
        .unwrap();
    assert_eq!(read_response(&mut c).await.0, "HTTP/1.1 404 Not Found");
    c.get_mut()
        .write_all(post("/small/x", "01234").as_bytes())
        .await
        .unwrap();
    assert_eq!(
        read_response(&mut c).await.0,
        "HTTP/1.1 413 Payload Too Large"
    );
}

/// Hands the sender of its streamed body to the test.
struct Streamer(Mutex<Option<tokio::sync::oneshot::Sender<mpsc::Sender<Bytes>>>>);
impl Handler for Streamer {
    fn handle(self: Arc<Self>, _req: HttpRequest) -> HandlerFuture {
        Box::pin(async move {
            let (tx, rx) = mpsc::channel(4);
            if let Some(give) = self.0.lock().unwrap().take() {
                let _ = give.send(tx);
            }
            HttpResponse::streaming(200, "text/xml", rx)
        })
    }
}

/// Reads one chunk of a chunked body: its data, empty for the last chunk (whose
/// empty trailer section the CRLF after it ends).
async fn read_chunk(c: &mut BufReader<TcpStream>) -> String {
    let mut size = String::new();
    c.read_line(&mut size).await.unwrap();
    let n = usize::from_str_radix(size.trim_end(), 16).unwrap();
    let mut data = vec![0; n + 2];
    c.read_exact(&mut data).await.unwrap();
    assert_eq!(&data[n..], b"\r\n");
    data.truncate(n);
    String::from_utf8(data).unwrap()
}

#[tokio::test]
async fn streamed_bodies_are_sent_chunk_by_chunk_until_the_sender_drops() {
    let (give, take) = tokio::sync::oneshot::channel();
    let port = serve(Router::new(vec![Route::exact(
        "/stream",
        Arc::new(Streamer(Mutex::new(Some(give)))),
    )]))
    .await;
    let mut c = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    c.get_mut()
        .write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let tx = take.await.unwrap();
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        c.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
        head.push(line.trim_end().to_ascii_lowercase());
    }
    assert_eq!(head[0], "http/1.1 200 ok");
    assert!(
        head.contains(&"transfer-encoding: chunked".to_string()),
        "{head:?}"
    );
    // Each chunk arrives while the sender is still alive: nothing is buffered
    // until the end.
    for part in ["<first/>", "<second/>"] {
        tx.send(Bytes::from(part)).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(2), read_chunk(&mut c))
            .await
            .expect("the chunk is sent as it comes");
        assert_eq!(got, part);
    }
    drop(tx);
    let last = tokio::time::timeout(Duration::from_secs(2), read_chunk(&mut c))
        .await
        .unwrap();
    assert_eq!(last, "", "the body ends when the sender drops");
    // The connection stays usable after a streamed body.
    c.get_mut()
        .write_all(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut c).await.0, "HTTP/1.1 404 Not Found");
}
