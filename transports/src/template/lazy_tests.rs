use super::*;

fn root(json: &str) -> Value {
    LazyJson::root(&Bytes::from(json.to_owned()))
}

#[test]
fn members_are_found_at_every_depth_in_one_pass() {
    let json = r#" {"a": 1, "b": {"c": [true, null, -2.5e3, "x\"]}"], "d": {}},
        "e\u0041": "y", "f": [], "g": [[1], {"h": "i"}]} "#;
    let event = root(json);
    assert_eq!(event.get_attr("a").unwrap(), Value::from(1));
    let b = event.get_attr("b").unwrap();
    let c = b.get_attr("c").unwrap();
    assert_eq!(c.len(), Some(4));
    assert_eq!(c.get_item(&Value::from(0)).unwrap(), Value::from(true));
    assert!(c.get_item(&Value::from(1)).unwrap().is_none());
    assert_eq!(c.get_item(&Value::from(2)).unwrap(), Value::from(-2500.0));
    assert_eq!(c.get_item(&Value::from(3)).unwrap(), Value::from("x\"]}"));
    assert_eq!(b.get_attr("d").unwrap().len(), Some(0));
    assert_eq!(
        event.get_attr("eA").unwrap(),
        Value::from("y"),
        "keys unescaped"
    );
    assert_eq!(event.get_attr("f").unwrap().len(), Some(0));
    let g = event.get_attr("g").unwrap();
    assert_eq!(
        g.get_item(&Value::from(1)).unwrap().get_attr("h").unwrap(),
        Value::from("i")
    );
    let keys: Vec<String> = event.try_iter().unwrap().map(|k| k.to_string()).collect();
    assert_eq!(keys, ["a", "b", "eA", "f", "g"]);
    let text = b.downcast_object_ref::<LazyJson>().unwrap().text();
    assert_eq!(text, r#"{"c": [true, null, -2.5e3, "x\"]}"], "d": {}}"#);
    assert!(event.get_attr("zz").unwrap().is_undefined());
}

#[test]
fn the_index_agrees_with_serde_json_on_an_event() {
    let body = serde_json::to_vec(&serde_json::json!({
        "ticket": {"code": "E3XK", "subject": "Заявка \"срочно\" {}", "comments": [
            {"text": "one\nline", "id": 1}, {"text": "two\\", "id": 2}
        ]},
        "n": 1.5, "empty": {}, "list": []
    }))
    .unwrap();
    let event = LazyJson::root(&Bytes::from(body.clone()));
    let tree: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let comments = event
        .get_attr("ticket")
        .unwrap()
        .get_attr("comments")
        .unwrap();
    for (i, comment) in tree["ticket"]["comments"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let lazy = comments.get_item(&Value::from(i)).unwrap();
        assert_eq!(
            lazy.get_attr("text").unwrap().as_str(),
            comment["text"].as_str()
        );
    }
    let subject = event
        .get_attr("ticket")
        .unwrap()
        .get_attr("subject")
        .unwrap();
    assert_eq!(subject.as_str(), tree["ticket"]["subject"].as_str());
    assert_eq!(
        event.downcast_object_ref::<LazyJson>().unwrap().text(),
        std::str::from_utf8(&body).unwrap()
    );
}

/// Any JSON value: scalars (strings with quotes, backslashes, control characters and
/// any Unicode), and arrays and objects of them, nested.
fn json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            proptest::collection::vec((".{0,8}", inner), 0..6)
                .prop_map(|members| serde_json::Value::Object(members.into_iter().collect())),
        ]
    })
}

/// Whether `lazy` reads as `tree` all the way down: the same keys in the same order, the
/// same items, the same scalars, and each container's text parsing to its tree; and
/// whether [`scalar_at`] finds each scalar at its `path` in `text` (and no container).
fn agrees(
    lazy: &Value,
    tree: &serde_json::Value,
    at: &str,
    text: &[u8],
    path: &mut Vec<Step>,
) -> Result<(), String> {
    let differ = |what: &str| Err(format!("{at}: {what}: {lazy:?} against {tree}"));
    let found = scalar_at(text, path);
    match tree {
        serde_json::Value::Object(members) => {
            let keys: Vec<String> = lazy
                .try_iter()
                .map_err(|e| e.to_string())?
                .map(|k| k.as_str().unwrap_or_default().to_owned())
                .collect();
            if keys.iter().ne(members.keys()) {
                return differ("keys");
            }
            for (key, member) in members {
                let value = lazy.get_attr(key).map_err(|e| e.to_string())?;
                path.push(Step::Attr(key.clone()));
                agrees(&value, member, &format!("{at}.{key:?}"), text, path)?;
                path.pop();
            }
        }
        serde_json::Value::Array(items) => {
            if lazy.len() != Some(items.len()) {
                return differ("length");
            }
            for (i, item) in items.iter().enumerate() {
                let value = lazy.get_item(&Value::from(i)).map_err(|e| e.to_string())?;
                path.push(Step::Index(i as i64));
                agrees(&value, item, &format!("{at}[{i}]"), text, path)?;
                path.pop();
            }
        }
        scalar => {
            let read = serde_json::to_value(lazy).map_err(|e| e.to_string())?;
            if &read != scalar {
                return differ("scalar");
            }
            // Where a value is read without the index, it is the same value.
            let direct: Option<Value> = found.and_then(|t| serde_json::from_str(t).ok());
            if !path.is_empty() && direct.as_ref() != Some(lazy) {
                return differ(&format!("scalar_at gave {found:?}"));
            }
        }
    }
    if (tree.is_object() || tree.is_array()) && found.is_some() {
        return differ("scalar_at found a container");
    }
    if let Some(part) = lazy.downcast_object_ref::<LazyJson>() {
        // Read without the index, a part's text is the index's.
        if value_at(text, path) != Some(part.text()) {
            return differ("value_at");
        }
        let parsed: serde_json::Value =
            serde_json::from_str(part.text()).map_err(|e| format!("{at}: text: {e}"))?;
        if &parsed != tree {
            return differ("text");
        }
    }
    Ok(())
}

proptest::proptest! {
    // A fixed seed keeps the suite deterministic; change it locally to explore further.
    #![proptest_config(proptest::test_runner::Config {
        cases: 512,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6c61_7a79_6a73_6f6e),
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })]

    #[test]
    fn the_index_reads_any_json_as_serde_json_does(tree in json()) {
        // Compact, as bodies are sent, and pretty, as a relayed body may come.
        for text in [
            serde_json::to_string(&tree).unwrap(),
            serde_json::to_string_pretty(&tree).unwrap(),
        ] {
            let lazy = LazyJson::root(&Bytes::from(text.clone()));
            if let Err(message) = agrees(&lazy, &tree, "event", text.as_bytes(), &mut Vec::new()) {
                return Err(proptest::test_runner::TestCaseError::fail(
                    format!("{message}\nin {text}"),
                ));
            }
        }
    }
}

#[test]
fn a_member_is_read_without_the_index_as_the_index_reads_it() {
    let body = br#" { "a" : { "k" : 1, "k": 2, "e\u0041": "x\"}", "l": [ {"m": null}, "s" ] },
        "n": -1.5e3, "t": true } "#;
    let at = |path: &[Step]| scalar_at(body, path);
    let attr = |k: &str| Step::Attr(k.to_owned());
    assert_eq!(
        at(&[attr("a"), attr("k")]),
        Some("1"),
        "the first of equal keys"
    );
    assert_eq!(
        at(&[attr("a"), attr("eA")]),
        Some(r#""x\"}""#),
        "keys unescaped"
    );
    let m = [attr("a"), attr("l"), Step::Index(0), attr("m")];
    assert_eq!(at(&m), Some("null"));
    assert_eq!(at(&[attr("a"), attr("l"), Step::Index(1)]), Some(r#""s""#));
    assert_eq!(at(&[attr("n")]), Some("-1.5e3"));
    assert_eq!(at(&[attr("t")]), Some("true"));
    // The index answers these: missing, a container, a negative item, a member of a
    // string or of an array, an item of an object, a part that is not UTF-8.
    for path in [
        vec![attr("zz")],
        vec![attr("a"), attr("l"), Step::Index(2)],
        vec![attr("a")],
        vec![attr("a"), attr("l")],
        vec![attr("a"), attr("l"), Step::Index(-1)],
        vec![attr("a"), attr("l"), Step::Index(1), Step::Index(0)],
        vec![attr("a"), attr("l"), attr("m")],
        vec![attr("a"), Step::Index(0)],
    ] {
        assert_eq!(at(&path), None);
    }
    assert_eq!(scalar_at(b"{\"b\": \"\xff\"}", &[attr("b")]), None);
    // Text that is not JSON: none, and no panic.
    for broken in ["", "{", "{\"a\"", "{\"a\":", "{\"a\" 1}", "[1,", "[1}"] {
        assert_eq!(scalar_at(broken.as_bytes(), &[attr("a")]), None, "{broken}");
    }
    // Brackets that do not pair: no panic.
    for unmatched in [
        r#"{"b": [1}, "a": 2}"#,
        r#"{"b": {1], "a": 2}"#,
        "[[[",
        "]]]",
        "{}}",
    ] {
        for path in [&[attr("a")][..], &[Step::Index(0)], &[]] {
            let _ = value_at(unmatched.as_bytes(), path);
        }
    }
}

#[test]
fn text_that_is_not_json_ends_the_index_without_a_panic() {
    for json in [
        "{",
        "[",
        "{\"a\": [1, 2",
        "{\"a\"",
        "{\"a\": \"b",
        "}",
        "]]]",
        "{} {}",
        "[}",
        "{\"a\":]",
        "[1,,2]",
        "{\"a\" 1}",
    ] {
        let event = root(json);
        if let Some(len) = event.len() {
            for i in 0..len {
                let _ = event.get_item(&Value::from(i));
            }
        }
        let _ = event.get_attr("a");
    }
    assert!(root("\"just text\"").as_str() == Some("just text"));
    assert!(root("").is_undefined());
    // A part that is not UTF-8 cannot be read; the rest can.
    let event = LazyJson::root(&Bytes::from_static(
        b"{\"a\": \"ok\", \"b\": \"\xff\", \"\xfe\": 1}",
    ));
    assert_eq!(event.get_attr("a").unwrap().as_str(), Some("ok"));
    assert!(event.get_attr("b").unwrap().is_undefined());
    assert_eq!(event.len(), Some(3));
}
