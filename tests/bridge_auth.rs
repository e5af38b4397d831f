//! The bridge's token rule, over a real loopback socket and mounted in an application's
//! router: mutations need the token, loopback reads do not, unknown peers count as remote,
//! and binding off loopback without a token is refused.

#[path = "support/helpers.rs"]
mod helpers;
#[path = "support/bridge.rs"]
mod served;

use serde_json::{Value, json};
use served::{Served, assert_error};

fn plan(items: Value) -> Value {
    json!({"name": "p", "blocks": [{"name": "b", "items": items}]})
}

#[tokio::test]
async fn with_a_token_mutations_need_it_and_loopback_reads_do_not() {
    let s = Served::start(None, None, Some("s3cret")).await;
    let body = plan(json!([{"id": "a", "kind": "sum"}]));
    let response = s
        .client
        .post(s.url("/executions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "unauthorized");
    let (status, error) = s
        .send(
            s.client
                .post(s.url("/executions"))
                .bearer_auth("guess")
                .json(&body),
        )
        .await;
    assert_error(status, &error, 401, "unauthorized");
    let (status, error) = s.post_raw("/interrupt", "").await;
    assert_error(status, &error, 401, "unauthorized");
    // The token in the query string is not enough for a mutation.
    let (status, _) = s.post_raw("/interrupt?token=s3cret", "").await;
    assert_eq!(status, 401);

    let (status, created) = s
        .send(
            s.client
                .post(s.url("/executions"))
                .bearer_auth("s3cret")
                .json(&body),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, error) = s.post_raw(&format!("/executions/{id}/resume"), "").await;
    assert_error(status, &error, 401, "unauthorized");
    // Reads from loopback stay open.
    assert_eq!(s.get("/executions").await.0, 200);
    assert_eq!(s.get(&format!("/executions/{id}")).await.0, 200);
    assert_eq!(s.get("/health").await.0, 200);
    s.stop().await;
}

#[tokio::test]
async fn a_mounted_router_treats_unknown_peers_as_remote() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    let runtime = tend::Runtime::builder().start().await.unwrap();
    let router = tend::bridge::Bridge::new(runtime.clone())
        .with_token("s3cret")
        .router();
    let status = |request: Request<Body>| {
        let router = router.clone();
        async move { router.oneshot(request).await.unwrap().status().as_u16() }
    };
    let get = |uri: &str| {
        Request::get(uri)
            .header("host", "localhost")
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(status(get("/health")).await, 401);
    assert_eq!(status(get("/health?token=wrong")).await, 401);
    assert_eq!(status(get("/health?token=s3cret")).await, 200);
    let with_header = Request::get("/executions")
        .header("host", "localhost")
        .header("authorization", "Bearer s3cret")
        .body(Body::empty())
        .unwrap();
    assert_eq!(status(with_header).await, 200);
    // Without a token everything is open, mounted or not.
    let open = tend::bridge::Bridge::new(runtime.clone()).router();
    assert_eq!(open.oneshot(get("/health")).await.unwrap().status(), 200);
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn binding_off_loopback_without_a_token_is_refused() {
    let runtime = tend::Runtime::builder().start().await.unwrap();
    let err = tend::bridge::Bridge::new(runtime.clone())
        .bind("0.0.0.0:0".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, tend::bridge::BridgeError::InsecureBind { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("TEND_BRIDGE_TOKEN"), "{err}");
    let err = tend::bridge::Bridge::new(runtime.clone())
        .with_token("")
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, tend::bridge::BridgeError::EmptyToken));
    // `serve` applies the same rule before anything is bound.
    let err = tend::bridge::Bridge::new(runtime.clone())
        .serve("0.0.0.0:0".parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        tend::bridge::BridgeError::InsecureBind { .. }
    ));
    runtime.shutdown().await.unwrap();
}
