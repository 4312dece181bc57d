//! Herald in a real browser: headless Chromium (Debian's `chromium`, driven over
//! WebDriver by `chromedriver`) runs pages whose `EventSource`s talk to the real binary.
//!
//! Each test starts its own browser with a fresh profile and talks only to `127.0.0.1`.
//! Without Chromium installed a test prints a loud SKIP line and passes, unless
//! `HERALD_REQUIRE_SERVICES=1` (set by `.ci/run`), where it fails.

mod browser_support;
mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use browser_support::{
    Browser, PAGE_WAIT, PageEvent, Probe, Site, bounded, cors_for, data, ids, probe_site, text,
};
use herald_testkit::{http, proxy::Proxy};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::{metric, wait_metric};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn token(sub: &str, subscribe: &[&str], publish: &[&str]) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let claims =
        json!({"sub": sub, "exp": exp, "herald": {"subscribe": subscribe, "publish": publish}});
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn event(via: &str, kind: &str, id: &str, data: &str) -> PageEvent {
    PageEvent {
        via: via.to_owned(),
        kind: kind.to_owned(),
        id: id.to_owned(),
        data: data.to_owned(),
    }
}

#[tokio::test]
async fn eventsource_gets_unnamed_events_by_onmessage_and_named_ones_by_listener() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    bounded(async {
        let site = probe_site().await;
        let server = support::herald()
            .config_toml(cors_for(&site.origin()))
            .spawn()
            .await;
        browser.goto(&site.url("/probe.html")).await;
        let page = Probe(&browser);
        let url = server.url("/events?topic=orders.%3E");
        page.open("orders", &url, false, &["created", "shipped"])
            .await;
        page.connected("orders").await;

        let a = server
            .publish(json!({"topic": "orders.1", "data": {"n": 1}}))
            .await;
        let b = server
            .publish(json!({"topic": "orders.2", "event": "created", "data": "two\nlines"}))
            .await;
        // A type the page has no listener for is not dispatched at all, not even to
        // onmessage; a topic outside the selector is not sent.
        server
            .publish(json!({"topic": "orders.3", "event": "refunded", "data": "unheard"}))
            .await;
        server
            .publish(json!({"topic": "users.1", "data": "elsewhere"}))
            .await;
        let c = server
            .publish(json!({"topic": "orders.eu.4", "event": "shipped", "data": {"to": "eu"}}))
            .await;
        let d = server
            .publish(json!({"topic": "orders.5", "data": "plain"}))
            .await;

        let view = page.wait_events("orders", 4, PAGE_WAIT).await;
        assert_eq!(
            view.events,
            [
                event("onmessage", "message", &a, r#"{"n":1}"#),
                event("listener", "created", &b, "two\nlines"),
                event("listener", "shipped", &c, r#"{"to":"eu"}"#),
                event("onmessage", "message", &d, "plain"),
            ]
        );
        assert_eq!((view.opens, view.errors.len()), (1, 0), "{view:?}");
    })
    .await;
}

#[tokio::test]
async fn ten_topics_share_one_connection_while_another_tab_keeps_working() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    bounded(async {
        let site = probe_site().await;
        let server = support::herald()
            .config_toml(cors_for(&site.origin()))
            .spawn()
            .await;
        let topics: Vec<String> = (0..10).map(|i| format!("feed.t{i}")).collect();
        let query: Vec<String> = topics.iter().map(|t| format!("topic={t}")).collect();
        let url = server.url(&format!("/events?{}", query.join("&")));

        browser.goto(&site.url("/probe.html")).await;
        let first = Probe(&browser);
        first.open("ten", &url, false, &[]).await;
        first.connected("ten").await;

        // A second tab on the same origin opens its own stream and still gets through:
        // the first tab holds one connection, not ten.
        let first_tab = browser.new_tab().await;
        browser.goto(&site.url("/probe.html")).await;
        let second = Probe(&browser);
        second
            .open("other", &server.url("/events?topic=other"), false, &[])
            .await;
        second.connected("other").await;
        wait_metric(&server, "herald_connections", 2.0).await;

        // The second tab publishes from the page, to one of the first tab's topics.
        let reply = browser
            .eval(
                "return fetch(arguments[0], {method: 'POST', headers: {'Content-Type': \
                 'application/json'}, body: JSON.stringify({topic: 'feed.t3', data: 'from tab 2'})})\
                 .then((r) => r.json())",
                json!([server.url("/publish")]),
            )
            .await;
        let from_tab = reply["id"].as_str().expect("publish reply id").to_owned();
        let other = server.publish(json!({"topic": "other", "data": "tab 2"})).await;
        assert_eq!(
            ids(&second.wait_events("other", 1, PAGE_WAIT).await.events),
            [other.as_str()]
        );

        let batch: Vec<Value> = topics
            .iter()
            .map(|t| json!({"topic": t, "data": format!("on {t}")}))
            .collect();
        let res = server.post_json("/publish", &json!(batch).to_string()).await;
        let batch_ids: Vec<String> = res.assert_status(200).json()["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();

        browser.switch_to(&first_tab).await;
        let view = first.wait_events("ten", 11, PAGE_WAIT).await;
        let mut expected_data = vec!["from tab 2".to_owned()];
        expected_data.extend(topics.iter().map(|t| format!("on {t}")));
        let mut expected_ids = vec![from_tab];
        expected_ids.extend(batch_ids);
        assert_eq!(data(&view.events), expected_data);
        assert_eq!(ids(&view.events), expected_ids);
        assert_eq!(metric(&server, "herald_connections").await, 2.0);
    })
    .await;
}

#[tokio::test]
async fn browser_reconnects_after_a_network_drop_and_gets_every_event_exactly_once() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    bounded(async {
        let site = probe_site().await;
        // A short retry hint, so that the browser comes back soon after each cut.
        let config = format!("{}[sse]\nretry_ms = 100\n", cors_for(&site.origin()));
        let server = support::herald().config_toml(config).spawn().await;
        let proxy = Proxy::start(server.addr()).await;
        browser.goto(&site.url("/probe.html")).await;
        let page = Probe(&browser);
        let url = format!("http://{}/events?topic=feed.%3E", proxy.addr());
        page.open("feed", &url, false, &["tick", "herald.reset"])
            .await;
        page.connected("feed").await;

        const EVENTS: usize = 60;
        const CUTS: [usize; 3] = [12, 30, 45];
        let mut expected = Vec::new();
        let mut cuts = 0;
        for i in 0..EVENTS {
            if CUTS.contains(&i) {
                // Cut a live stream each time: wait until the browser is back first.
                proxy.wait_accepted(cuts + 1).await;
                assert!(proxy.cut() >= 1, "cut {cuts} found no live connection");
                cuts += 1;
            }
            // Publishing goes on right after the cut, while the browser is away. Every
            // fifth event is named, the others go to onmessage.
            let topic = format!("feed.{i}");
            let (body, expect) = if i % 5 == 0 {
                let body = json!({"topic": topic, "event": "tick", "data": {"i": i}});
                (body, ("listener", "tick", format!("{{\"i\":{i}}}")))
            } else {
                let body = json!({"topic": topic, "data": format!("event {i}")});
                (body, ("onmessage", "message", format!("event {i}")))
            };
            let id = server.publish(body).await;
            expected.push(event(expect.0, expect.1, &id, &expect.2));
            tokio::time::sleep(Duration::from_millis(15)).await;
        }

        let view = page
            .wait_events("feed", EVENTS, Duration::from_secs(15))
            .await;
        // Every event exactly once, in order, with Herald's ids; no reset, since history
        // covered every gap.
        assert_eq!(view.events, expected);
        // The browser reconnected by itself after each cut.
        assert_eq!(view.errors, [0; CUTS.len()], "{view:?}");
        assert_eq!(view.opens as usize, CUTS.len() + 1);
        assert_eq!(proxy.accepted(), CUTS.len() + 1);
        assert_eq!(view.ready_state, 1);
    })
    .await;
}

#[tokio::test]
async fn jwt_works_by_cookie_and_by_access_token_and_without_it_the_page_gets_an_error() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    bounded(async {
        let site = probe_site().await;
        let config = format!(
            "[auth]\nmode = \"jwt\"\nhs256_secret = \"{SECRET}\"\n{}",
            cors_for(&site.origin())
        );
        let server = support::herald().config_toml(config).spawn().await;
        let alice = token("alice", &["inbox.alice"], &[]);
        browser.goto(&site.url("/probe.html")).await;
        let page = Probe(&browser);
        let url = server.url("/events?topic=inbox.alice");

        // Without a token, or with a forged one, EventSource fails for good: an error
        // event, readyState CLOSED, no retry, no events.
        page.open("anonymous", &url, true, &[]).await;
        page.open(
            "forged",
            &format!("{url}&access_token=not.a.token"),
            false,
            &[],
        )
        .await;
        for name in ["anonymous", "forged"] {
            let view = page.closed(name).await;
            assert_eq!(
                (view.opens, view.errors.as_slice()),
                (0, &[2][..]),
                "{name}"
            );
        }
        // EventSource hides the reason; the page can read it with fetch, since errors
        // carry the CORS headers.
        let refusal = browser
            .eval(
                "return fetch(arguments[0], {credentials: 'include'})\
                 .then(async (r) => ({status: r.status, body: await r.json()}))",
                json!([url]),
            )
            .await;
        assert_eq!(refusal["status"], 401, "{refusal}");
        assert_eq!(refusal["body"]["error"]["code"], "missing_token");

        // By query parameter (no cookie: withCredentials is off).
        page.open("query", &format!("{url}&access_token={alice}"), false, &[])
            .await;
        // By cookie, set by a page on 127.0.0.1 and sent to Herald's port along with a
        // credentialed EventSource.
        browser
            .eval(
                "document.cookie = 'herald_token=' + arguments[0] + '; path=/; SameSite=Lax'",
                json!([alice]),
            )
            .await;
        page.open("cookie", &url, true, &[]).await;
        page.connected("query").await;
        page.connected("cookie").await;

        let backend = format!("Bearer {}", token("backend", &[], &["inbox.>"]));
        let body = json!({"topic": "inbox.alice", "data": "for alice"}).to_string();
        let res = http::post_json(
            server.addr(),
            "/publish",
            &body,
            &[("Authorization", &backend)],
        )
        .await;
        let id = res.assert_status(200).json()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for name in ["query", "cookie"] {
            let view = page.wait_events(name, 1, PAGE_WAIT).await;
            assert_eq!(
                view.events,
                [event("onmessage", "message", &id, "for alice")],
                "{name}"
            );
        }
        for name in ["anonymous", "forged"] {
            assert!(page.view(name).await.events.is_empty(), "{name}");
        }
    })
    .await;
}

/// Reads the console's row for event `id` once its topic is filled in.
const CONSOLE_ROW: &str = "for (const row of document.querySelectorAll('#events li.event')) {\
       if (row.querySelector('.id').textContent !== arguments[0]) continue;\
       const topic = row.querySelector('.topic').textContent;\
       if (arguments[1] && topic === '—') return null;\
       return {topic, type: row.querySelector('.type').textContent,\
               data: row.querySelector('.data').textContent};\
     }\
     return null;";

#[tokio::test]
async fn console_connects_publishes_from_its_form_and_shows_the_event() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    bounded(async {
        let server = support::start().await;
        browser.goto(&server.url("/")).await;
        let title = browser.eval("return document.title", json!([])).await;
        assert_eq!(title, "Herald console");

        // Connect with the keyboard: type the topics, press Enter.
        let topics = browser.find("#topics").await;
        browser.clear(&topics).await;
        browser.type_into(&topics, "demo.>\u{E007}").await;
        let connection = browser
            .wait_for(
                "the console to connect",
                "const id = document.getElementById('connection-id').textContent;\
                 return document.getElementById('state').dataset.state === 'open' \
                     && id !== '—' && id",
                json!([]),
                PAGE_WAIT,
            )
            .await;
        assert_eq!(text(&connection).len(), 36, "a UUID: {connection}");

        // Publish from the form.
        for (field, value) in [
            ("#pub-topic", "demo.greetings"),
            ("#pub-event", "greeting"),
            ("#pub-data", r#"{"hello": "browser", "n": 1}"#),
        ] {
            let input = browser.find(field).await;
            browser.clear(&input).await;
            browser.type_into(&input, value).await;
        }
        browser.click(&browser.find("#publish").await).await;
        let result = browser
            .wait_for(
                "the publish result",
                "const t = document.getElementById('publish-result').textContent;\
                 return t.startsWith('published ') && t.slice(10)",
                json!([]),
                PAGE_WAIT,
            )
            .await;
        let id = text(&result).to_owned();
        let row = browser
            .wait_for(
                "the published event",
                CONSOLE_ROW,
                json!([id, true]),
                PAGE_WAIT,
            )
            .await;
        assert_eq!(
            row,
            json!({"topic": "demo.greetings", "type": "greeting",
                   "data": "{\n  \"hello\": \"browser\",\n  \"n\": 1\n}"})
        );

        // Events from elsewhere show too; their topic is not on the wire.
        let order = server
            .publish(json!({"topic": "demo.orders", "event": "created",
                            "data": {"order": 7, "items": ["tea", "cups"]}}))
            .await;
        let note = server
            .publish(json!({"topic": "demo.notes", "data": "plain text, no type"}))
            .await;
        let row = browser
            .wait_for(
                "an outside event",
                CONSOLE_ROW,
                json!([note, false]),
                PAGE_WAIT,
            )
            .await;
        assert_eq!(row["topic"], "—");
        assert_eq!(row["type"], "message");
        let row = browser.eval(CONSOLE_ROW, json!([order, false])).await;
        assert_eq!(row["type"], "created");
        browser.resize(1280, 1040).await;
        browser
            .eval(
                "window.scrollTo(0, 0); document.activeElement.blur()",
                json!([]),
            )
            .await;
        let shot = browser.save_screenshot("console.png").await;
        // HERALD_CONSOLE_SCREENSHOT=docs/console.png refreshes the README's picture.
        if let Some(dest) = std::env::var_os("HERALD_CONSOLE_SCREENSHOT") {
            std::fs::copy(&shot, dest).expect("copy the console screenshot");
        }

        // "/" focuses the filter; typing narrows the list; Escape clears it.
        browser.press("/").await;
        let focused = browser
            .eval("return document.activeElement.id", json!([]))
            .await;
        assert_eq!(focused, "filter");
        browser.press("tea").await;
        let shown = browser
            .wait_for(
                "the filter",
                "const rows = [...document.querySelectorAll('#events li.event:not([hidden])')];\
                 return rows.length === 1 && rows[0].querySelector('.id').textContent",
                json!([]),
                PAGE_WAIT,
            )
            .await;
        assert_eq!(shown, json!(order));
        browser.press("\u{E00C}").await;
        let all = browser
            .eval(
                "return document.querySelectorAll('#events li.event:not([hidden])').length",
                json!([]),
            )
            .await;
        assert_eq!(all, 4, "herald.connected and three events");

        // At phone width: one column, nothing wider than the screen.
        browser.resize(390, 844).await;
        browser
            .wait_for(
                "a layout without horizontal scrolling",
                "return document.documentElement.scrollWidth <= window.innerWidth",
                json!([]),
                PAGE_WAIT,
            )
            .await;
        browser.save_screenshot("console-phone.png").await;
    })
    .await;
}

#[tokio::test]
async fn console_shows_its_reconnect_and_resumes_without_loss() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    bounded(async {
        let server = support::herald()
            .config_toml("[sse]\nretry_ms = 100\n")
            .spawn()
            .await;
        // The console and its stream both go through the proxy, as through a network.
        let proxy = Proxy::start(server.addr()).await;
        browser.goto(&format!("http://{}/", proxy.addr())).await;
        let topics = browser.find("#topics").await;
        browser.clear(&topics).await;
        browser.type_into(&topics, "drop.>\u{E007}").await;
        browser
            .wait_for(
                "the console to connect",
                "return document.getElementById('state').dataset.state === 'open'",
                json!([]),
                PAGE_WAIT,
            )
            .await;
        let first = server.publish(json!({"topic": "drop.a", "data": 1})).await;
        browser
            .wait_for(
                "the first event",
                CONSOLE_ROW,
                json!([first, false]),
                PAGE_WAIT,
            )
            .await;

        assert!(proxy.cut() >= 1, "the stream was live");
        let mut ids = vec![first];
        for i in 2..=4 {
            ids.push(server.publish(json!({"topic": "drop.a", "data": i})).await);
        }
        let facts = browser
            .wait_for(
                "a reconnect that resumes",
                "const text = (id) => document.getElementById(id).textContent;\
                 return document.getElementById('state').dataset.state === 'open'\
                     && text('resumes') === '1'\
                     && [text('reconnects'), text('last-event-id'), text('log')]",
                json!([]),
                PAGE_WAIT,
            )
            .await;
        assert_eq!(facts[0], "1");
        assert_eq!(facts[1], json!(ids[3]));
        assert!(
            text(&facts[2]).contains(&format!("resuming after {}", ids[0])),
            "{facts}"
        );
        let listed = browser
            .wait_for(
                "all four events",
                "const ids = [...document.querySelectorAll('#events li.event:not(.system) .id')]\
                     .map((e) => e.textContent).reverse();\
                 return ids.length >= 4 && ids",
                json!([]),
                PAGE_WAIT,
            )
            .await;
        assert_eq!(listed, json!(ids), "every event once, in order");
    })
    .await;
}

#[tokio::test]
async fn console_serves_its_files_and_can_be_turned_off() {
    let server = support::start().await;
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/style.css", "text/css; charset=utf-8"),
    ] {
        let res = server.get(path).await;
        res.assert_status(200);
        assert_eq!(res.header("content-type"), Some(content_type), "{path}");
        assert_eq!(res.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
        let etag = res.header("etag").expect("an etag").to_owned();
        let again = http::get(server.addr(), path, &[("If-None-Match", &etag)]).await;
        assert_eq!((again.status, again.body.len()), (304, 0), "{path}");
    }
    let page = server.get("/").await;
    assert!(page.text().contains("data-auth-mode=\"none\""));
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
    server
        .post_json("/", "{}")
        .await
        .assert_error(405, "method_not_allowed");

    let off = support::herald()
        .config_toml("[console]\nenabled = false\n")
        .spawn()
        .await;
    off.get("/").await.assert_error(404, "not_found");
    off.get("/console/app.js")
        .await
        .assert_error(404, "not_found");
    off.get("/healthz").await.assert_status(200);
}

#[tokio::test]
async fn example_page_lists_notifications_and_closes_the_export_on_end() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    bounded(async {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/browser");
        let read = |name: &str| std::fs::read(dir.join(name)).expect("an example file");
        let site = Site::serve(vec![
            ("/", "text/html; charset=utf-8", read("index.html")),
            (
                "/notifications.js",
                "text/javascript; charset=utf-8",
                read("notifications.js"),
            ),
        ])
        .await;
        // Short heartbeats, so Herald notices a closed stream soon.
        let config = format!("{}[sse]\nheartbeat_ms = 200\n", cors_for(&site.origin()));
        let server = support::herald().config_toml(config).spawn().await;
        browser
            .goto(&site.url(&format!("/?herald={}&user=alice", server.url(""))))
            .await;
        let by_id = |id: &str, what: &str| format!("return document.getElementById('{id}').{what}");
        browser
            .wait_for(
                "the notifications stream",
                &format!("{} === 'live'", by_id("status", "textContent")),
                json!([]),
                PAGE_WAIT,
            )
            .await;

        let notify = |user: &str, title: &str| {
            json!({"topic": "users.alice.notifications", "event": "notification", "user": user,
                   "data": {"title": title, "body": "."}})
        };
        server.publish(notify("alice", "Invoice paid")).await;
        // Scoped to bob: never reaches alice, even on her topic.
        server.publish(notify("bob", "For bob")).await;
        server.publish(notify("alice", "Order shipped")).await;
        browser
            .wait_for(
                "two notifications",
                &format!("{} === '2'", by_id("unread", "dataset.count")),
                json!([]),
                PAGE_WAIT,
            )
            .await;
        let titles = browser
            .eval(
                "return [...document.querySelectorAll('#notifications strong')]\
                 .map((s) => s.textContent)",
                json!([]),
            )
            .await;
        assert_eq!(titles, json!(["Order shipped", "Invoice paid"]));

        browser.click(&browser.find("#export").await).await;
        browser
            .wait_for(
                "the export to end",
                &format!("{} === 'done'", by_id("export-status", "dataset.state")),
                json!([]),
                PAGE_WAIT,
            )
            .await;
        let output = browser
            .eval(&by_id("export-output", "textContent"), json!([]))
            .await;
        assert_eq!(
            output,
            "id,title\n1,Invoice paid\n2,Order shipped\n3,Password changed\n"
        );
        let status = browser
            .eval(&by_id("export-status", "textContent"), json!([]))
            .await;
        assert!(text(&status).ends_with("done, 3 rows"), "{status}");

        // On `end` the page closed its EventSource: only the notifications stream is
        // left, and a chunk published now is not shown.
        wait_metric(&server, "herald_connections", 1.0).await;
        let job = browser
            .eval(&by_id("export-status", "dataset.job"), json!([]))
            .await;
        server
            .publish(
                json!({"topic": format!("users.alice.exports.{}", text(&job)),
                            "event": "chunk", "user": "alice", "data": "late\n"}),
            )
            .await;
        server.publish(notify("alice", "Password changed")).await;
        browser
            .wait_for(
                "the third notification",
                &format!("{} === '3'", by_id("unread", "dataset.count")),
                json!([]),
                PAGE_WAIT,
            )
            .await;
        let after = browser
            .eval(&by_id("export-output", "textContent"), json!([]))
            .await;
        assert_eq!(after, output);
    })
    .await;
}
