//! Herald inside an existing warp app, the way NestJS users put an `@Sse` route next to
//! their controllers: `POST /orders` publishes in-process, `GET /events` streams.
//!
//! ```text
//! cargo run -p herald-sse --example embedded
//! curl -N localhost:3030/events                      # in one terminal
//! curl -X POST localhost:3030/orders -d '{"item":"book"}' -H 'content-type: application/json'
//! ```

use herald_bus::{Bus, Draft, EventName, Selector, Subscription, Topic};
use herald_sse::{EventStream, StreamOptions};
use warp::{Filter, http::StatusCode};

#[tokio::main]
async fn main() {
    let bus = Bus::new();

    let with_bus = {
        let bus = bus.clone();
        warp::any().map(move || bus.clone())
    };
    // The business handler: store the order (not shown), then publish.
    let orders = warp::post()
        .and(warp::path("orders"))
        .and(warp::body::json::<serde_json::Value>())
        .and(with_bus.clone())
        .then(|order: serde_json::Value, bus: Bus| async move {
            let draft = Draft::new(Topic::new("orders.created").expect("valid topic"), order)
                .with_name(EventName::new("order.created").expect("valid type"));
            match bus.publish(draft).await {
                Ok(id) => warp::reply::with_status(id.to_string(), StatusCode::CREATED),
                Err(e) => warp::reply::with_status(e.to_string(), StatusCode::SERVICE_UNAVAILABLE),
            }
        });

    // The stream: every order event, resuming from Last-Event-ID after a reconnect.
    let events = warp::get()
        .and(warp::path("events"))
        .and(herald_sse::resume())
        .and(with_bus)
        .map(|resume, bus: Bus| {
            let selectors = [Selector::new("orders.>").expect("valid selector")];
            match bus.subscribe(Subscription::new(selectors).with_resume(resume)) {
                Ok(subscriber) => {
                    herald_sse::reply(EventStream::new(subscriber, &StreamOptions::default()))
                }
                Err(e) => warp::reply::with_status(e.to_string(), StatusCode::SERVICE_UNAVAILABLE)
                    .into_response(),
            }
        });

    println!("listening on http://127.0.0.1:3030 (GET /events, POST /orders)");
    warp::serve(orders.or(events))
        .run(([127, 0, 0, 1], 3030))
        .await;
}

use warp::Reply as _;
