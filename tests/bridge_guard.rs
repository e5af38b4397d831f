//! What keeps other web pages from driving the bridge, over a real loopback socket: POSTs
//! only as JSON, only from the bridge's own origin, only for hosts it knows (no DNS
//! rebinding), and the security headers on what it serves. The browser test
//! (`tests/browser.rs`) has a real page on another origin try the same.

#[path = "support/helpers.rs"]
mod helpers;
#[path = "support/bridge.rs"]
mod served;

use serde_json::json;
use served::{Served, assert_error};

#[tokio::test]
async fn posts_must_be_json_typed_whatever_their_body() {
    let s = Served::start(None, None, None).await;
    let plan =
        json!({"name": "p", "blocks": [{"name": "b", "items": [{"id": "a", "kind": "sum"}]}]})
            .to_string();
    for content_type in [
        None,
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let (status, error) = s.post_as("/executions", plan.clone(), content_type).await;
        assert_error(status, &error, 415, "unsupported_media_type");
        let (status, error) = s.post_as("/interrupt", "", content_type).await;
        assert_error(status, &error, 415, "unsupported_media_type");
    }
    let (_, list) = s.get("/executions").await;
    assert_eq!(list["executions"], json!([]), "nothing was started");
    let (status, created) = s
        .post_as("/executions", plan, Some("application/json; charset=utf-8"))
        .await;
    assert_eq!(status, 201, "{created}");
    s.stop().await;
}

#[tokio::test]
async fn posts_from_another_origin_are_refused() {
    let s = Served::start(None, None, None).await;
    let own = s.base.trim_start_matches("http://").to_owned();
    let post = |headers: Vec<(&'static str, String)>| {
        let mut request = s
            .client
            .post(s.url("/interrupt"))
            .header("content-type", "application/json");
        for (k, v) in headers {
            request = request.header(k, v);
        }
        s.send(request)
    };
    for headers in [
        vec![("origin", "http://127.0.0.1:1".to_owned())],
        vec![("origin", "null".to_owned())],
        vec![("origin", "https://evil.example".to_owned())],
        vec![("sec-fetch-site", "same-site".to_owned())],
        vec![("sec-fetch-site", "cross-site".to_owned())],
        vec![
            ("origin", format!("http://{own}")),
            ("sec-fetch-site", "cross-site".to_owned()),
        ],
    ] {
        let (status, error) = post(headers.clone()).await;
        assert_error(status, &error, 403, "cross_origin");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("own pages"),
            "{headers:?}: {error}"
        );
    }
    // Its own pages, and clients that are no browser (no Origin at all), pass.
    let (status, _) = post(vec![("origin", format!("http://{own}"))]).await;
    assert_eq!(status, 202);
    let (status, _) = post(vec![("sec-fetch-site", "same-origin".to_owned())]).await;
    assert_eq!(status, 202);
    let (status, _) = post(vec![]).await;
    assert_eq!(status, 202);
    s.stop().await;
}

#[tokio::test]
async fn only_localhost_ip_addresses_and_allowed_names_are_answered() {
    let s = Served::start(None, None, None).await;
    let port = s.base.rsplit(':').next().unwrap().to_owned();
    let get = |host: String| s.send(s.client.get(s.url("/health")).header("host", host));
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("LocalHost:{port}"),
    ] {
        assert_eq!(get(host.clone()).await.0, 200, "{host}");
    }
    // A name that rebinds to 127.0.0.1 names itself, and is refused, for reads too.
    let (status, error) = get(format!("rebind.evil.example:{port}")).await;
    assert_error(status, &error, 403, "host_not_allowed");
    assert!(error.to_string().contains("rebind.evil.example"), "{error}");
    let long = "x".repeat(10_000);
    let (status, error) = get(format!("{long}.example")).await;
    assert_error(status, &error, 403, "host_not_allowed");
    assert!(
        error.to_string().len() < 1_000,
        "the host is quoted cut short"
    );
    // Hosts that only look like localhost or an address, and a second Host header, sent
    // as they are on a socket of their own.
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    for hosts in [
        vec!["127.0.0.1:80@evil.example".to_owned()],
        vec!["localhost:evil".to_owned()],
        vec![format!("127.0.0.1:{port}"), "evil.example".to_owned()],
        vec![format!("localhost:{port}"), format!("localhost:{port}")],
    ] {
        let mut request = "GET /health HTTP/1.1\r\n".to_owned();
        for host in &hosts {
            request.push_str(&format!("Host: {host}\r\n"));
        }
        request.push_str("Connection: close\r\n\r\n");
        let answer = raw_exchange(addr, &request).await;
        assert!(
            answer.starts_with("HTTP/1.1 403") && answer.contains("host_not_allowed"),
            "{hosts:?}: {answer}"
        );
    }
    // The same socket exchange with one good Host header is answered.
    let answer = raw_exchange(
        addr,
        &format!("GET /health HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    s.stop().await;

    // A name the application allows.
    let runtime = tend::Runtime::builder().start().await.unwrap();
    let router = tend::bridge::Bridge::new(runtime.clone())
        .allow_host("Tend.Internal")
        .router();
    use tower::ServiceExt;
    let request = |host: &str| {
        axum::http::Request::get("/health")
            .header("host", host)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let status = router
        .clone()
        .oneshot(request("tend.internal:8080"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let status = router
        .oneshot(request("other.internal"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403);
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_dashboard_and_every_answer_carry_the_security_headers() {
    let s = Served::start(None, None, None).await;
    let page = s.client.get(s.url("/")).send().await.unwrap();
    let headers = page.headers().clone();
    let policy = headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a script nonce");
    assert!(nonce.len() >= 32, "{nonce}");
    assert!(html.contains(&format!("<script nonce=\"{nonce}\">")));
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'none'",
        "connect-src 'self'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    let again = s.client.get(s.url("/")).send().await.unwrap();
    assert_ne!(
        again.headers()["content-security-policy"],
        headers["content-security-policy"],
        "a fresh nonce each time"
    );
    for response in [
        s.client.get(s.url("/")).send().await.unwrap(),
        s.client.get(s.url("/health")).send().await.unwrap(),
        s.client.get(s.url("/nowhere")).send().await.unwrap(),
    ] {
        let h = response.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(h.contains_key("content-security-policy"));
    }
    s.stop().await;
}

#[tokio::test]
async fn bodies_are_parsed_strictly_and_errors_quote_input_cut_short() {
    let s = Served::start(None, None, None).await;
    // Arrays where objects belong are refused, at any depth.
    for (body, at) in [
        (json!(["p", []]), "the body"),
        (json!({"name": "p", "blocks": [["b", []]]}), "`blocks[0]`"),
        (
            json!({"name": "p", "blocks": [{"name": "b", "items": [["a", "sum"]]}]}),
            "`blocks[0].items[0]`",
        ),
    ] {
        let (status, error) = s.post("/executions", &body).await;
        assert_error(status, &error, 400, "invalid_body");
        assert!(error.to_string().contains(at), "{body}: {error}");
    }
    let (status, error) = s
        .post("/interrupt", &json!({"strategy": {"immediate": ["1s"]}}))
        .await;
    assert_error(status, &error, 400, "invalid_body");
    let (status, error) = s
        .post(
            "/interrupt",
            &json!({"strategy": {"immediate": {"grace": "1s", "extra": 1}}}),
        )
        .await;
    assert_error(status, &error, 400, "invalid_body");
    assert!(error.to_string().contains("extra"), "{error}");
    // An unknown kind, or a param of the wrong type, 500,000 characters long.
    let huge = "k".repeat(500_000);
    let plan =
        json!({"name": "p", "blocks": [{"name": "b", "items": [{"id": "a", "kind": huge}]}]});
    let (status, error) = s.post("/executions", &plan).await;
    assert_error(status, &error, 400, "unknown_kind");
    assert!(
        error.to_string().len() < 1_000,
        "{} bytes",
        error.to_string().len()
    );
    let plan = json!({"name": "p", "blocks": [{"name": "b", "items": [
        {"id": "a", "kind": "sleep", "params": {"ms": huge}}
    ]}]});
    let (status, error) = s.post("/executions", &plan).await;
    assert_error(status, &error, 400, "bad_params");
    assert!(
        error.to_string().len() < 1_000,
        "{} bytes",
        error.to_string().len()
    );
    // A key twice in one object is refused, at any depth, naming the key and the object:
    // serde_json would keep the last, which a reader of the body need not see.
    let items = r#"[{"id": "a", "kind": "sleep", "params": {"ms": 1}}]"#;
    for (body, key, at) in [
        (
            format!(
                r#"{{"name": "p", "parallelism": 1, "parallelism": 1024, "blocks": [{{"name": "b", "items": {items}}}]}}"#
            ),
            "parallelism",
            "the body",
        ),
        (
            r#"{"name": "p", "blocks": [{"name": "b", "items": [{"id": "a", "kind": "sleep", "params": {"ms": 1, "ms": 4000}}]}]}"#.to_owned(),
            "ms",
            "`blocks[0].items[0].params`",
        ),
        (
            r#"{"strategy": "finish_current", "strategy": {"immediate": {"grace": "1s"}}}"#
                .to_owned(),
            "strategy",
            "the body",
        ),
    ] {
        let path = if key == "strategy" {
            "/interrupt"
        } else {
            "/executions"
        };
        let (status, error) = s.post_raw(path, body.clone()).await;
        assert_error(status, &error, 400, "duplicate_key");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("`{key}`")) && message.contains(at),
            "{body}: {message}"
        );
    }
    // Params that are an array, which serde would read field by field.
    let plan = json!({"name": "p", "blocks": [{"name": "b", "items": [
        {"id": "listed", "kind": "sleep", "params": [4000, 2]}
    ]}]});
    let (status, error) = s.post("/executions", &plan).await;
    assert_error(status, &error, 400, "bad_params");
    assert!(error.to_string().contains("`listed`"), "{error}");
    let (_, list) = s.get("/executions").await;
    assert_eq!(list["executions"], json!([]), "none of them ran");
    s.stop().await;
}

#[tokio::test]
async fn plans_over_the_ceilings_are_refused_before_anything_runs() {
    let s = Served::start(None, None, None).await;
    let items: Vec<_> = (0..100_001)
        .map(|i| json!({"id": format!("i{i}"), "kind": "sum"}))
        .collect();
    let body = json!({"name": "huge", "blocks": [{"name": "b", "items": items}]});
    // (Over the 1 MiB body limit too; under it, the ceiling is what refuses.)
    let (status, _) = s.post("/executions", &body).await;
    assert_eq!(status, 413);
    let items: Vec<_> = (0..10)
        .map(|i| json!({"id": format!("i{i}"), "kind": "sum"}))
        .collect();
    let body =
        json!({"name": "wide", "parallelism": 30_000, "blocks": [{"name": "b", "items": items}]});
    let (status, error) = s.post("/executions", &body).await;
    assert_error(status, &error, 400, "parallelism_too_high");
    assert!(error.to_string().contains("1024"), "{error}");
    let (_, list) = s.get("/executions").await;
    assert_eq!(list["executions"], json!([]));
    s.stop().await;

    // The item ceiling, configured low.
    let runtime = tend::Runtime::builder()
        .registry(tend::demo::registry().unwrap())
        .config(tend::Config {
            max_items: 3,
            ..tend::Config::default()
        })
        .start()
        .await
        .unwrap();
    let mut block = tend::Block::new("b");
    for i in 0..4 {
        block.push(tend::ItemSpec::new(format!("i{i}"), &tend::demo::Sum { add: 1 }).unwrap());
    }
    let plan = tend::Plan::new("four").block(block);
    let err = runtime.submit(plan.clone()).await.unwrap_err();
    assert!(
        matches!(
            err,
            tend::RuntimeError::Plan(tend::PlanError::TooManyItems {
                items: 4,
                max: 3,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(
        runtime.dry_run(&plan).await.is_err(),
        "a dry run has the same ceiling"
    );
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn only_canonical_ids_resolve_and_the_bearer_scheme_is_case_insensitive() {
    let s = Served::start(None, None, Some("s3cret")).await;
    let plan =
        json!({"name": "p", "blocks": [{"name": "b", "items": [{"id": "a", "kind": "sum"}]}]});
    let (status, created) = s
        .send(
            s.client
                .post(s.url("/executions"))
                .header("authorization", "bEaReR s3cret")
                .json(&plan),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(s.get(&format!("/executions/{id}")).await.0, 200);
    let (status, error) = s.get(&format!("/executions/{}", id.to_lowercase())).await;
    assert_error(status, &error, 404, "unknown_execution");
    let (status, _) = s
        .send(
            s.client
                .post(s.url("/interrupt"))
                .header("authorization", "Basic s3cret")
                .json(&json!({})),
        )
        .await;
    assert_eq!(status, 401, "another scheme is not a bearer token");
    s.stop().await;

    let runtime = tend::Runtime::builder().start().await.unwrap();
    let err = tend::bridge::Bridge::new(runtime.clone())
        .with_token("pässwörd")
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, tend::bridge::BridgeError::BadToken),
        "{err:?}"
    );
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_post_route_in_the_document_refuses_a_body_not_typed_json() {
    let s = Served::start(None, None, None).await;
    let (_, doc) = s.get("/openapi.json").await;
    let mut posts = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if item.get("post").is_none() {
            continue;
        }
        posts += 1;
        let path = path.replace("{id}", &tend::ExecutionId::generate().to_string());
        let (status, error) = s.post_as(&path, "{}", Some("text/plain")).await;
        assert_error(status, &error, 415, "unsupported_media_type");
    }
    assert!(posts >= 6, "{posts} POST routes");
    s.stop().await;
}

/// Sends `request` on a socket of its own and reads the answer until the server closes it.
async fn raw_exchange(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = socket.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    tokio::time::timeout(helpers::PATIENCE, exchange)
        .await
        .expect("the server answered and closed the socket")
}
