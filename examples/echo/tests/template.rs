//! The router and `template.yaml` agree on what API Gateway decides deployed: the route
//! keys, the two-way routes (route responses) and the route selection expression. A
//! route added in code and not in the template fails here, naming the route and the file.

#[test]
fn the_template_declares_exactly_the_routers_routes_and_route_responses() {
    let router = echo::router();
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml");
    if let Err(error) = wsgw_aws::template::check_router(template, &router) {
        panic!("{error}");
    }
    assert!(
        router.two_way_routes().is_empty(),
        "echo answers through the sink"
    );
}
