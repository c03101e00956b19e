//! The router and `template.yaml` agree on what API Gateway decides deployed: the route
//! keys, the two-way routes (route responses) and the route selection expression. A
//! route added in code and not in the template fails here, naming the route and the file.

use std::sync::Arc;

use telemetry::Telemetry;
use wsgw_aws::template::Template;
use wsgw_memory::{MemoryHistory, MemorySink, MemoryStore};

#[test]
fn the_template_declares_exactly_the_routers_routes_and_route_responses() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml");
    let template = Template::from_path(path).unwrap_or_else(|error| panic!("{error}"));
    let api = template
        .websocket_api()
        .unwrap_or_else(|error| panic!("{error}"));
    let router = telemetry::router(
        Arc::new(MemoryStore::new()),
        Arc::new(MemorySink::new()),
        Telemetry::new(Arc::new(MemoryHistory::new())),
    );
    if let Err(drift) = api.check_router(&router) {
        panic!("{drift}");
    }
    assert!(
        router.two_way_routes().is_empty(),
        "telemetry answers through the sink"
    );
}
