//! `sample-worker`: the sample service's order worker, the function its API's orders are handed to (on AWS
//! through a queue or an asynchronous invoke; on the local stack the demo invokes it directly). It takes
//! `{"order_id": "ord-...", "quantity": n}` and answers `{"fulfilled": "ord-..."}`; an order it cannot read
//! is a function error. Its faults come from its environment, like the service's, so a bad version of it can
//! be rolled out and caught.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use sample_service::Faults;
use serde_json::{Value, json};

/// Fulfils one order, or fails as this version's faults say.
pub fn fulfil(order: &Value, faults: Faults, draw: f64) -> Result<Value, String> {
    if faults.fails(draw) {
        return Err("injected fault: FAULT_ERROR_RATE is set for this version".into());
    }
    let id = order["order_id"].as_str().filter(|id| id.starts_with("ord-"));
    let quantity = order["quantity"].as_u64().filter(|q| (1..=1000).contains(q));
    match (id, quantity) {
        (Some(id), Some(_)) => Ok(json!({"fulfilled": id})),
        _ => Err(format!("not an order (order_id \"ord-...\", quantity 1 to 1000): {order}")),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let faults = Faults::from_lookup(|name| std::env::var(name).ok());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        if faults.latency_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(faults.latency_ms)).await;
        }
        fulfil(&event.payload, faults, fastrand::f64()).map_err(Error::from)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_is_fulfilled_and_anything_else_fails() {
        let order = json!({"order_id": "ord-0000abcd", "quantity": 2});
        assert_eq!(fulfil(&order, Faults::default(), 0.5).unwrap(), json!({"fulfilled": "ord-0000abcd"}));
        assert!(fulfil(&json!({"order_id": "x", "quantity": 2}), Faults::default(), 0.5).is_err());
        assert!(fulfil(&json!({"order_id": "ord-1", "quantity": 0}), Faults::default(), 0.5).is_err());
        let faulty = Faults { error_rate: 0.3, latency_ms: 0 };
        assert!(fulfil(&order, faulty, 0.1).unwrap_err().contains("injected fault"));
        assert!(fulfil(&order, faulty, 0.9).is_ok());
    }
}
