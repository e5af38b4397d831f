//! What the bridge serves about itself, over a real loopback socket: the OpenAPI document
//! (every route, each answering on its method) and the dashboard page.

#[path = "support/helpers.rs"]
mod helpers;
#[path = "support/bridge.rs"]
mod served;

use served::Served;

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let s = Served::start(None, None, None).await;
    let (status, doc) = s.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with('3'));
    let mut paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        vec![
            "/",
            "/events",
            "/executions",
            "/executions/{id}",
            "/executions/{id}/cancel",
            "/executions/{id}/interrupt",
            "/executions/{id}/pause",
            "/executions/{id}/resume",
            "/executions/{id}/retry",
            "/health",
            "/interrupt",
            "/maintenance",
            "/metrics",
            "/openapi.json",
            "/orphans/sweep",
            "/semaphores",
            "/shutdown",
            "/tree"
        ]
    );
    assert!(doc["paths"]["/executions"]["post"]["requestBody"].is_object());
    assert!(doc["components"]["schemas"]["Plan"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Every documented route answers something other than 404 / 405 on its method.
    for (path, item) in doc["paths"].as_object().unwrap() {
        let path = path.replace("{id}", &tend::ExecutionId::generate().to_string());
        for method in item.as_object().unwrap().keys() {
            if path == "/events" {
                continue;
            }
            let request = match method.as_str() {
                "get" => s.client.get(s.url(&path)),
                "post" => s
                    .client
                    .post(s.url(&path))
                    .header("content-type", "application/json")
                    .body("{}"),
                "delete" => s.client.delete(s.url(&path)),
                other => panic!("unexpected method {other}"),
            };
            let response = request.send().await.unwrap();
            let status = response.status();
            let code = match status.as_u16() {
                404 => response.json::<serde_json::Value>().await.unwrap()["error"]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                _ => String::new(),
            };
            // 404 only for what the route says is not there: an unknown execution, or
            // metrics this bridge was not given.
            let not_there = matches!(code.as_str(), "unknown_execution" | "metrics_off");
            assert!(
                not_there || (status != 404 && status != 405),
                "{method} {path}: {status} {code}"
            );
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn the_dashboard_page_is_served_and_self_contained() {
    let s = Served::start(None, None, None).await;
    let response = s.client.get(s.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("EventSource"));
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http"),
        "no external assets"
    );
    s.stop().await;
}
