//! CORS: browsers on an allowed origin may subscribe and publish with credentials.

mod support;

use herald_testkit::http;

#[tokio::test]
async fn preflight_from_an_allowed_origin_passes_and_others_fail() {
    let server = support::herald()
        .config_toml("[cors]\nallowed_origins = [\"http://app.example\"]\n")
        .spawn()
        .await;
    let preflight = |origin: &'static str| {
        let addr = server.addr();
        async move {
            let headers = [
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                (
                    "Access-Control-Request-Headers",
                    "content-type, authorization",
                ),
            ];
            http::request(addr, "OPTIONS", "/publish", &headers, b"")
                .await
                .unwrap()
        }
    };
    let ok = preflight("http://app.example").await;
    ok.assert_status(200);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("http://app.example")
    );
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));

    preflight("http://evil.example")
        .await
        .assert_error(403, "cors_forbidden");

    let get = http::get(
        server.addr(),
        "/healthz",
        &[("Origin", "http://app.example")],
    )
    .await;
    get.assert_status(200);
    assert_eq!(
        get.header("access-control-allow-origin"),
        Some("http://app.example")
    );
    // Errors carry the CORS headers too, so the page can read them.
    let err = http::get(
        server.addr(),
        "/events",
        &[("Origin", "http://app.example")],
    )
    .await;
    err.assert_error(400, "missing_topic");
    assert_eq!(
        err.header("access-control-allow-origin"),
        Some("http://app.example")
    );
}
