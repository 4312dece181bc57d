//! The NestJS `EventEmitter2` pattern with herald-bus: a business service publishes
//! `orders.created` in-process; an audit log sees every order, and a user's inbox sees only
//! that user's notifications.
//!
//! Run it with `cargo run -p herald-bus --example orders`.

use futures_util::StreamExt;
use herald_bus::{
    Audience, Bus, Delivery, Draft, EventName, PublishError, Selector, Subscription, Topic, UserId,
};
use serde_json::json;

/// The business service: it knows the bus, not who listens.
struct OrdersService {
    bus: Bus,
}

impl OrdersService {
    async fn create(&self, order_id: u32, customer: &UserId) -> Result<(), PublishError> {
        // ... the order is stored here ...
        let created = Draft::new(
            topic("orders.created"),
            json!({"order": order_id, "customer": customer.as_str()}),
        )
        .with_name(EventName::new("order.created").expect("valid event type"));
        // One event for everyone interested in orders, one private to the customer.
        let notice = Draft::new(
            topic(&format!("users.{customer}.notifications")),
            format!("Your order {order_id} is confirmed"),
        )
        .with_audience(Audience::User(customer.clone()));
        self.bus.publish_batch(vec![created, notice]).await?;
        Ok(())
    }
}

fn topic(name: &str) -> Topic {
    Topic::new(name).expect("valid topic")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bus = Bus::new();
    let alice = UserId::new("alice")?;
    let bob = UserId::new("bob")?;

    let mut audit = bus.subscribe(Subscription::new([Selector::new("orders.>")?]))?;
    let mut inbox = bus.subscribe(
        Subscription::new([Selector::new("users.*.notifications")?]).with_user(alice.clone()),
    )?;

    let orders = OrdersService { bus: bus.clone() };
    orders.create(1, &alice).await?;
    orders.create(2, &bob).await?;

    for _ in 0..2 {
        if let Some(Delivery::Event(e)) = audit.next().await {
            println!("audit  {} {} {}", e.id(), e.topic(), e.data().as_str());
        }
    }
    // Bob's notice never reaches Alice's inbox: only her own arrives.
    if let Some(Delivery::Event(e)) = inbox.next().await {
        println!("alice  {} {} {}", e.id(), e.topic(), e.data().as_str());
    }
    Ok(())
}
