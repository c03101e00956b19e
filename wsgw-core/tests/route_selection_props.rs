//! Property tests of route selection: `RouteSelection::parse` agrees with a model of the
//! expression grammar, `select` never panics and equals a plain walk of the parsed JSON
//! (the reference model), what lies beside the path (huge numbers, deep nesting) never
//! changes the selection, and `Router::select_route` picks a registered key or `$default`
//! — never `$connect` or `$disconnect`.

use proptest::prelude::*;
use serde_json::{Map, Value};
use wsgw_core::{
    Context, Payload, Reply, Request, RouteSelection, Router, CONNECT, DEFAULT, DISCONNECT,
};

/// Field names drawn from a small set, so generated paths often hit.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("action".to_owned()),
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("é \"q\"".to_owned()),
        "[a-z$]{1,3}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("sendmessage".to_owned()),
            Just("$connect".to_owned()),
            Just("$disconnect".to_owned()),
            Just("$default".to_owned()),
            any::<String>(),
        ]
        .prop_map(Value::String),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((field(), inner), 0..5)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn path() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(field().prop_filter("no dots", |f| !f.contains('.')), 1..4)
}

/// The reference model: the value at the path, as a string, when it is a string, number
/// or boolean.
fn reference(value: &Value, path: &[String]) -> Option<String> {
    let mut current = value;
    for field in path {
        current = current.get(field)?;
    }
    match current {
        Value::String(key) => Some(key.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn selection(path: &[String]) -> RouteSelection {
    RouteSelection::parse(&format!("$request.body.{}", path.join("."))).expect("a valid path")
}

fn router(keys: &[String]) -> Router {
    let mut router = Router::new();
    for key in keys {
        router = router.route(key.clone(), |_ctx: Context, _request: Request| async {
            Ok(Reply::ok())
        });
    }
    router
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn select_equals_the_reference_walk(value in json(), path in path(), pretty in any::<bool>()) {
        let text = if pretty {
            serde_json::to_string_pretty(&value).unwrap()
        } else {
            serde_json::to_string(&value).unwrap()
        };
        // Walk the document as serde_json reads it back (a float may read back one
        // unit in the last place apart without serde_json's float_roundtrip).
        let read_back: Value = serde_json::from_str(&text).unwrap();
        let expected = reference(&read_back, &path);
        let selection = selection(&path);
        prop_assert_eq!(selection.select(Some(&Payload::text(text.clone()))), expected);
        // The same bytes in a binary frame select nothing.
        prop_assert_eq!(selection.select(Some(&Payload::binary(text.into_bytes()))), None);
    }

    #[test]
    fn what_lies_beside_the_action_never_hides_it(
        action in any::<String>(),
        depth in 1usize..3000,
        pad in prop_oneof![
            Just("1e400".to_owned()),
            Just("-1e400".to_owned()),
            Just("18446744073709551616".to_owned()),
            "[1-9][0-9]{29,59}",
        ],
        before in any::<bool>(),
    ) {
        let action_json = serde_json::to_string(&action).unwrap();
        let deep = format!("{}{pad}{}", "[".repeat(depth), "]".repeat(depth));
        let body = if before {
            format!(r#"{{"n":{pad},"deep":{deep},"action":{action_json}}}"#)
        } else {
            format!(r#"{{"action":{action_json},"deep":{deep},"n":{pad}}}"#)
        };
        prop_assert_eq!(RouteSelection::default().select(Some(&Payload::text(body))), Some(action));
    }

    #[test]
    fn any_text_selects_without_panicking_and_only_from_well_formed_json(text in any::<String>()) {
        let selected = RouteSelection::default().select(Some(&Payload::text(text.clone())));
        if selected.is_some() {
            // Only a document that is JSON (given big numbers and deep nesting) selects.
            let trimmed = text.trim_start();
            prop_assert!(trimmed.starts_with('{'), "{:?} selected {:?}", text, selected);
        }
    }

    #[test]
    fn json_fragments_select_without_panicking(
        parts in prop::collection::vec(
            prop_oneof![
                Just("{"), Just("}"), Just("["), Just("]"), Just(":"), Just(","),
                Just("\"action\""), Just("\"x\""), Just("1e400"), Just("-0"), Just("null"),
                Just("\\u0000"), Just("\"\\ud800\""), Just(" "),
            ],
            0..64,
        )
    ) {
        let text: String = parts.concat();
        let selected = RouteSelection::default().select(Some(&Payload::text(text.clone())));
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            prop_assert_eq!(selected, reference(&value, &["action".to_owned()]));
        }
    }

    #[test]
    fn expressions_parse_exactly_when_the_grammar_says(expression in prop_oneof![
        "\\$request\\.body(\\.[a-z.]{0,4}){0,3}",
        "\\$request\\.[a-z]{0,6}\\.[a-z]{1,3}",
        any::<String>(),
    ]) {
        let model = expression
            .strip_prefix("$request.body.")
            .is_some_and(|rest| rest.split('.').all(|field| !field.is_empty()));
        let parsed = RouteSelection::parse(&expression);
        prop_assert_eq!(parsed.is_ok(), model, "{:?}", expression);
        if let Err(error) = parsed {
            prop_assert!(error.to_string().contains("route selection expression"));
        }
    }

    #[test]
    fn select_route_picks_a_registered_message_route_or_default(
        registered in prop::collection::vec(
            prop_oneof![
                Just("sendmessage".to_owned()),
                Just(CONNECT.to_owned()),
                Just(DISCONNECT.to_owned()),
                Just(DEFAULT.to_owned()),
                "[a-z]{1,3}",
            ],
            0..6,
        ),
        action in prop_oneof![
            Just(Value::from("sendmessage")),
            Just(Value::from(CONNECT)),
            Just(Value::from(DISCONNECT)),
            Just(Value::from(DEFAULT)),
            "[a-z]{1,3}".prop_map(Value::from),
            leaf(),
        ],
        binary in any::<bool>(),
    ) {
        let router = router(&registered);
        let body = serde_json::json!({ "action": action }).to_string();
        let payload = if binary { Payload::binary(body.into_bytes()) } else { Payload::text(body) };
        let selected = router.select_route(Some(&payload));
        let model = match (&action, binary) {
            (_, true) => DEFAULT.to_owned(),
            (action, false) => match reference(&serde_json::json!({ "action": action }), &["action".to_owned()]) {
                Some(key) if key != CONNECT && key != DISCONNECT && registered.contains(&key) => key,
                _ => DEFAULT.to_owned(),
            },
        };
        prop_assert_eq!(selected, model);
    }
}
