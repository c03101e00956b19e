//! The router and `template.yaml` agree on what API Gateway decides deployed: the route
//! keys, the two-way routes (route responses) and the route selection expression. A
//! route added in code and not in the template fails here, naming the route and the file;
//! so does an HTTP route missing from either history API (`HistoryApi` REST or HTTP).

use telemetry::Telemetry;

#[test]
fn the_template_declares_exactly_the_routers_routes_and_route_responses() {
    let router = telemetry::router(Telemetry::new());
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml");
    if let Err(error) = wsgw_aws::template::check_router(template, &router) {
        panic!("{error}");
    }
    assert!(
        router.two_way_routes().is_empty(),
        "telemetry answers through the sink"
    );
}

/// Whichever API `HistoryApi` deploys the history on, its routes are the router's HTTP
/// routes, and its function gets the event format that API sends.
#[test]
fn both_history_apis_of_the_template_route_exactly_the_routers_http_routes() {
    use wsgw_aws::lambda::HttpEventFormat;
    use wsgw_aws::template::{ApiKind, StackSettings, Template};

    let router = telemetry::router(Telemetry::new());
    let template = Template::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml"))
        .unwrap_or_else(|error| panic!("{error}"));
    for (choice, kind, format) in [
        ("REST", ApiKind::Rest, HttpEventFormat::RestApi),
        ("HTTP", ApiKind::Http, HttpEventFormat::PayloadV2),
    ] {
        let settings = StackSettings::new("telemetry")
            .with_overrides(&[format!("HistoryApi={choice}")])
            .unwrap_or_else(|error| panic!("{error}"));
        let stack = template
            .resolve(settings)
            .unwrap_or_else(|error| panic!("{error}"));
        let [api] = stack.rest_apis.as_slice() else {
            panic!(
                "HistoryApi={choice}: one history API, not {:?}",
                stack.rest_apis
            );
        };
        assert_eq!(api.kind, kind, "HistoryApi={choice}");
        let mut routes: Vec<String> = Vec::new();
        for route in &api.routes {
            let label = format!("{} {}", route.method, route.path);
            assert_eq!(
                router.http_route(&route.method, &route.path),
                Some(label.as_str()),
                "HistoryApi={choice}: the router has no route {label}"
            );
            assert_eq!(route.payload_format, format, "HistoryApi={choice}: {label}");
            routes.push(label);
        }
        routes.sort();
        assert_eq!(
            routes,
            [
                "GET /devices",
                "GET /history",
                "OPTIONS /devices",
                "OPTIONS /history"
            ],
            "HistoryApi={choice}: the router's four HTTP routes"
        );
    }
}
