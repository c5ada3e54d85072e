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

/// Sends `head` and then one byte of `trickle` every `every`, ignoring write
/// errors (the server may close first).
fn trickle(mut w: tokio::net::tcp::OwnedWriteHalf, head: String, every: Duration) {
    tokio::spawn(async move {
        if w.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for _ in 0..100 {
            tokio::time::sleep(every).await;
            if w.write_all(b"x").await.is_err() {
                return;
            }
        }
    });
}

fn quick_limits() -> HttpLimits {
    HttpLimits {
        header_read: Duration::from_millis(300),
        body_grace: Duration::from_millis(200),
        body_min_rate: 10,
    }
}

#[tokio::test]
async fn a_request_head_trickled_byte_by_byte_is_cut_at_the_header_deadline() {
    let port =
        serve(Router::new(vec![Route::prefix("/", named("any"))]).with_limits(quick_limits()))
            .await;
    let (r, w) = TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap()
        .into_split();
    // "GET / HTTP/1.1\r\nX-Slow: xxxxx..." never ends its headers.
    trickle(
        w,
        "GET / HTTP/1.1\r\nX-Slow: ".into(),
        Duration::from_millis(50),
    );
    let t0 = std::time::Instant::now();
    let mut rest = Vec::new();
    let mut r = r;
    tokio::time::timeout(Duration::from_secs(3), r.read_to_end(&mut rest))
        .await
        .expect("the server closes the connection")
        .ok();
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(
        !String::from_utf8_lossy(&rest).contains("200 OK"),
        "the request was never served"
    );
}

#[tokio::test]
async fn a_body_slower_than_the_minimum_rate_gets_408() {
    let port = serve(
        Router::new(vec![Route::prefix("/", named("any")).max_body(1000)])
            .with_limits(quick_limits()),
    )
    .await;
    let (r, w) = TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap()
        .into_split();
    let head = "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".to_string();
    trickle(w, head, Duration::from_millis(300));
    let mut r = BufReader::new(r);
    let mut status = String::new();
    tokio::time::timeout(Duration::from_secs(3), r.read_line(&mut status))
        .await
        .expect("the slow body is answered before it ends")
        .unwrap();
    assert_eq!(status.trim_end(), "HTTP/1.1 408 Request Timeout");
}

/// Admits only requests with `x-key: good`, with bodies of at most 4 bytes.
struct Picky;
impl Handler for Picky {
    fn admit(&self, head: &HttpRequest, max_body: usize) -> Result<usize, HttpResponse> {
        assert!(head.body.is_empty(), "the head comes before the body");
        match head.header("x-key") {
            Some("good") => Ok(max_body.min(4)),
            _ => Err(HttpResponse::new(401, "text/plain", "who are you\n")),
        }
    }
    fn handle(self: Arc<Self>, req: HttpRequest) -> HandlerFuture {
        Box::pin(async move { HttpResponse::new(200, "text/plain", format!("{}", req.body.len())) })
    }
}

#[tokio::test]
async fn a_handler_refuses_or_limits_from_the_head_before_the_body_is_read() {
    let port = serve(Router::new(vec![
        Route::exact("/picky", Arc::new(Picky)).max_body(1000),
    ]))
    .await;
    // Refused on the head alone: the answer comes although no body byte was sent.
    let mut c = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    c.get_mut()
        .write_all(b"POST /picky HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        .await
        .unwrap();
    let (status, body) = tokio::time::timeout(Duration::from_secs(2), read_response(&mut c))
        .await
        .expect("answered without waiting for the body");
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 401 Unauthorized", "who are you\n")
    );
    // Admitted with a lower limit than the route's.
    let mut c = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    for (body, want) in [
        ("0123", "HTTP/1.1 200 OK"),
        ("01234", "HTTP/1.1 413 Payload Too Large"),
    ] {
        let req = format!(
            "POST /picky HTTP/1.1\r\nHost: x\r\nX-Key: good\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        c.get_mut().write_all(req.as_bytes()).await.unwrap();
        assert_eq!(read_response(&mut c).await.0, want);
    }
}

#[test]
fn a_header_hyper_refuses_is_left_out_and_the_answer_kept() {
    let mut resp = HttpResponse::new(200, "text/xml", "<ok/>");
    resp.headers.push(("x-bad", "line\r\nbreak".into()));
    resp.headers.push(("x-good", "yes".into()));
    let r = to_hyper(resp);
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("x-bad").is_none());
    assert_eq!(r.headers().get("x-good").unwrap(), "yes");
    assert_eq!(r.headers().get("content-type").unwrap(), "text/xml");
}
