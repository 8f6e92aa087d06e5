//! Every transcoding rule, against the echo service: its descriptors come from a file and its
//! package is routed by configuration, as another team's API would be.

use serde_json::{Value, json};

use crate::helpers::{Reply, Tenant, TestSuite};

/// A suite with one tenant, and a caller of it.
async fn setup() -> (TestSuite, Tenant, String) {
    let suite = TestSuite::spawn().await;
    let tenant = suite.create_tenant("acme").await;
    let token = suite.token(&tenant);
    (suite, tenant, token)
}

async fn call(
    suite: &TestSuite,
    tenant: &Tenant,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = suite
        .gateway
        .request(method.parse().unwrap(), path)
        .tenant(tenant)
        .bearer(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await
}

/// Asserts a 400 naming `field`.
fn assert_bad_field(reply: &Reply, field: &str) {
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.error_code(), "INVALID_ARGUMENT");
    let body = reply.json();
    let violation = &body["error"]["details"][0]["fieldViolations"][0];
    assert_eq!(violation["field"], field, "{body}");
    assert!(
        violation["description"]
            .as_str()
            .is_some_and(|text| !text.is_empty()),
        "{body}"
    );
}

/// The proto3 JSON name of a field named `proto_name` (lowerCamelCase).
fn json_name(proto_name: &str) -> String {
    let mut parts = proto_name.split('_');
    let mut name = parts.next().unwrap_or_default().to_owned();
    for part in parts {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            name.push(first.to_ascii_uppercase());
            name.push_str(chars.as_str());
        }
    }
    name
}

/// Every object key in `value` that is not a JSON name: one with an underscore (map keys
/// are data, and are skipped under the maps of `maps`).
fn proto_named_keys(value: &Value, maps: &[&str], found: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, nested) in object {
                if key.contains('_') {
                    found.push(key.clone());
                }
                if maps.contains(&key.as_str()) {
                    for entry in nested.as_object().into_iter().flat_map(|map| map.values()) {
                        proto_named_keys(entry, maps, found);
                    }
                } else {
                    proto_named_keys(nested, maps, found);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                proto_named_keys(item, maps, found);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn responses_use_json_names_everywhere_and_requests_take_either_name() {
    let (suite, tenant, token) = setup().await;
    let detail = "type.googleapis.com/acme.echo.v1.Detail";
    let expected = json!({
        "customLabel": "custom",
        "detailsByKey": {"first_key": {"firstName": "Ada", "visitCount": "3"}},
        "any": {"@type": detail, "firstName": "Grace", "visitCount": "1"},
        "innerById": {"7": {"name": "seven", "level": 7, "ids": []}},
        "fieldMask": "displayName,rateLimits.burst",
        "int64Value": "5",
    });
    let by_proto_names = json!({
        "custom_named": "custom",
        "details_by_key": {"first_key": {"first_name": "Ada", "visit_count": "3"}},
        "any": {"@type": detail, "first_name": "Grace", "visit_count": "1"},
        "inner_by_id": {"7": {"name": "seven", "level": 7}},
        "field_mask": "display_name,rate_limits.burst",
        "int64_value": 5,
    });
    for body in [by_proto_names, expected.clone()] {
        let reply = call(
            &suite,
            &tenant,
            &token,
            "POST",
            "/v1/echo",
            Some(body.clone()),
        )
        .await;
        assert_eq!(reply.status, 200, "{body}: {}", reply.text());
        let echoed = reply.json();
        for (field, value) in expected.as_object().unwrap() {
            assert_eq!(&echoed[field], value, "{field} from {body}: {echoed}");
        }
        let mut found = Vec::new();
        proto_named_keys(
            &echoed,
            &["detailsByKey", "innerById", "counts"],
            &mut found,
        );
        assert!(found.is_empty(), "proto names {found:?} in {echoed}");
    }
    // A custom json_name is the field's only JSON name: its lowerCamelCase form is not one.
    let reply = call(
        &suite,
        &tenant,
        &token,
        "POST",
        "/v1/echo",
        Some(json!({"customNamed": "x"})),
    )
    .await;
    assert_bad_field(&reply, "body");
    assert!(reply.text().contains("'customNamed'"), "{}", reply.text());
    // Error details are rendered by the same rules.
    let reply = call(
        &suite,
        &tenant,
        &token,
        "POST",
        "/v1/echo",
        Some(json!({"int32_value": "many"})),
    )
    .await;
    let mut found = Vec::new();
    proto_named_keys(&reply.json()["error"]["details"], &[], &mut found);
    assert!(
        found.is_empty(),
        "proto names {found:?} in {}",
        reply.text()
    );
}

#[tokio::test]
async fn every_field_kind_and_well_known_type_round_trips() {
    let (suite, tenant, token) = setup().await;
    let everything = json!({
        "string_value": "héllo \"world\"",
        "int32_value": -42,
        "int64_value": "-9007199254740993",
        "uint32_value": 4_000_000_000_u32,
        "uint64_value": "18446744073709551615",
        "sint64_value": "-5",
        "fixed64_value": "7",
        "double_value": "-Infinity",
        "float_value": "NaN",
        "bool_value": true,
        "bytes_value": "AAECAwT/",
        "color": "COLOR_RED",
        "tags": ["a", "b"],
        "colors": ["COLOR_GREEN", "COLOR_RED"],
        "numbers": ["1", "-2"],
        "inner": {"name": "in", "level": 3, "ids": [1, 2]},
        "inners": [{"name": "x", "level": 0, "ids": []}],
        "counts": {"a": "1", "b": "-2"},
        "inner_by_id": {"7": {"name": "seven", "level": 7, "ids": []}},
        "maybe": "",
        "text_choice": "chosen",
        "timestamp": "2026-11-23T10:11:12.345Z",
        "duration": "1.500s",
        "struct_value": {"a": 1.5, "b": [true, null, "x"], "c": {"d": "e"}},
        "value": [1.5, "two", {"three": false}],
        "list_value": ["x", 2.5, null],
        "field_mask": "displayName,rateLimits.burst",
        "any": {"@type": "type.googleapis.com/acme.echo.v1.Inner", "name": "packed", "level": 1, "ids": []},
        "empty": {},
        "wrapped_string": "",
        "wrapped_bytes": "aGk=",
        "wrapped_bool": false,
        "wrapped_int32": 0,
        "wrapped_int64": "9007199254740993",
        "wrapped_uint32": 7,
        "wrapped_uint64": "18446744073709551615",
        "wrapped_float": 1.5,
        "wrapped_double": 2.25,
        "timestamps": ["1970-01-01T00:00:00Z", "2038-01-19T03:14:08Z"],
    });
    let reply = call(
        &suite,
        &tenant,
        &token,
        "POST",
        "/v1/echo",
        Some(everything.clone()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let echoed = reply.json();
    for (field, sent) in everything.as_object().unwrap() {
        assert_eq!(
            &echoed[json_name(field)],
            sent,
            "field {field} did not round-trip: {echoed}"
        );
    }
    assert_eq!(reply.header("content-type"), Some("application/json"));

    // lowerCamelCase is accepted on input; numbers may come as JSON numbers or strings and
    // enums by number; the output uses proto names, 64-bit integers as strings, enum names.
    let reply = call(
        &suite,
        &tenant,
        &token,
        "POST",
        "/v1/echo",
        Some(json!({
            "stringValue": "camel",
            "int64Value": 12,
            "int32Value": "13",
            "color": 2,
            "numberChoice": 5,
            "wrappedInt64": 3,
            "inner": {"ids": ["4"]},
        })),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let echoed = reply.json();
    assert_eq!(echoed["stringValue"], "camel");
    assert_eq!(echoed["int64Value"], "12");
    assert_eq!(echoed["int32Value"], 13);
    assert_eq!(echoed["color"], "COLOR_GREEN");
    assert_eq!(echoed["numberChoice"], 5);
    assert_eq!(echoed["wrappedInt64"], "3");
    assert_eq!(echoed["inner"]["ids"], json!([4]));
    // Unset fields are reported with their defaults, unset messages left out.
    assert_eq!(echoed["boolValue"], false);
    assert_eq!(echoed["tags"], json!([]));
    assert!(echoed.get("timestamp").is_none(), "{echoed}");
}

#[tokio::test]
async fn query_strings_fill_the_fields_a_bodiless_route_does_not_bind() {
    let (suite, tenant, token) = setup().await;
    let query = [
        "string_value=a%20b%26c",
        "int64_value=-9007199254740993",
        "uint64_value=18446744073709551615",
        "int32Value=4",
        "bool_value=true",
        "color=COLOR_RED",
        "tags=x",
        "tags=y",
        "colors=COLOR_RED",
        "colors=2",
        "numbers=1",
        "numbers=-2",
        "inner.name=nested",
        "inner.level=3",
        "timestamp=2026-01-02T03:04:05Z",
        "duration=3.5s",
        "field_mask=a,b.c",
        "wrapped_int64=5",
        "wrapped_bool=false",
        "wrapped_string=w",
        "bytes_value=aGk%3D",
        "float_value=1.5",
        "maybe=",
        "text_choice=t",
    ]
    .join("&");
    let reply = call(
        &suite,
        &tenant,
        &token,
        "GET",
        &format!("/v1/echo?{query}"),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let echoed = reply.json();
    let expected = json!({
        "string_value": "a b&c",
        "int64_value": "-9007199254740993",
        "uint64_value": "18446744073709551615",
        "int32_value": 4,
        "bool_value": true,
        "color": "COLOR_RED",
        "tags": ["x", "y"],
        "colors": ["COLOR_RED", "COLOR_GREEN"],
        "numbers": ["1", "-2"],
        "inner": {"name": "nested", "level": 3, "ids": []},
        "timestamp": "2026-01-02T03:04:05Z",
        "duration": "3.500s",
        "field_mask": "a,b.c",
        "wrapped_int64": "5",
        "wrapped_bool": false,
        "wrapped_string": "w",
        "bytes_value": "aGk=",
        "float_value": 1.5,
        "maybe": "",
        "text_choice": "t",
    });
    for (field, value) in expected.as_object().unwrap() {
        assert_eq!(&echoed[json_name(field)], value, "field {field}: {echoed}");
    }

    // What the query string cannot say is refused, naming the parameter.
    for (query, field) in [
        ("bool_value=yes", "bool_value"),
        ("int32_value=abc", "int32_value"),
        ("int32_value=3000000000", "int32_value"),
        ("color=COLOR_BLUE", "color"),
        ("timestamp=yesterday", "timestamp"),
        ("nope=1", "nope"),
        ("inner.nope=1", "inner.nope"),
        ("inner=x", "inner"),
        ("struct_value=x", "struct_value"),
        ("string_value=a&string_value=b", "string_value"),
    ] {
        let reply = call(
            &suite,
            &tenant,
            &token,
            "GET",
            &format!("/v1/echo?{query}"),
            None,
        )
        .await;
        assert_bad_field(&reply, field);
    }
}

#[tokio::test]
async fn path_templates_bind_variables_segments_and_verbs() {
    let (suite, tenant, token) = setup().await;

    // Two variables, one of them an int64; a query parameter beside them.
    let reply = call(
        &suite,
        &tenant,
        &token,
        "GET",
        "/v1/shelves/fiction/books/42?with_author=true",
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let book = reply.json();
    assert_eq!(book["name"], "shelves/fiction/books/42");
    assert_eq!(book["author"], "Ada");
    assert_eq!(book["pages"], "4200");
    // A single-segment variable is percent-decoded, reserved characters included.
    let reply = call(
        &suite,
        &tenant,
        &token,
        "GET",
        "/v1/shelves/sci%2Ffi%20x/books/1",
        None,
    )
    .await;
    assert_eq!(
        reply.json()["name"],
        "shelves/sci/fi x/books/1",
        "{}",
        reply.text()
    );
    // A variable of the wrong type names its field.
    let reply = call(
        &suite,
        &tenant,
        &token,
        "GET",
        "/v1/shelves/fiction/books/forty-two",
        None,
    )
    .await;
    assert_bad_field(&reply, "book");

    // `**` binds the rest of the path, slashes included.
    let reply = call(
        &suite,
        &tenant,
        &token,
        "GET",
        "/v1/projects/p1/files/dir/sub/file.txt?version=3",
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({"name": "projects/p1/files/dir/sub/file.txt", "version": 3})
    );

    // A variable bound to a nested field, and a nested field from the query string.
    let reply = call(
        &suite,
        &tenant,
        &token,
        "GET",
        "/v1/nested/abc?outer.inner.label=L&note=n",
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({"outer": {"inner": {"id": "abc", "label": "L"}}, "note": "n"})
    );

    // A custom verb, and the RPC's success status.
    let reply = call(
        &suite,
        &tenant,
        &token,
        "POST",
        "/v1/shelves/s/books/1:publish",
        Some(json!({"publish_time": "2026-11-23T00:00:00Z"})),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    let book = reply.json();
    assert_eq!(
        (book["name"].as_str(), book["published"].as_bool()),
        (Some("shelves/s/books/1"), Some(true))
    );
    assert_eq!(book["publishTime"], "2026-11-23T00:00:00Z");
    // Without the verb, the path is another one: the book's, which takes PATCH and DELETE.
    let reply = call(
        &suite,
        &tenant,
        &token,
        "POST",
        "/v1/shelves/s/books/1",
        Some(json!({})),
    )
    .await;
    assert_eq!(reply.status, 405, "{}", reply.text());
    let reply = call(
        &suite,
        &tenant,
        &token,
        "POST",
        "/v1/shelves/s/books/1:unpublish",
        Some(json!({})),
    )
    .await;
    assert_eq!(reply.status, 404, "{}", reply.text());

    // `body: "book"`: the body is the book, the mask comes from the query string, and the
    // path variable sets the book's name.
    let reply = call(
        &suite,
        &tenant,
        &token,
        "PATCH",
        "/v1/shelves/s/books/1?update_mask=title,pages",
        Some(json!({"title": "New", "pages": "5"})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let book = reply.json();
    assert_eq!(book["name"], "shelves/s/books/1");
    assert_eq!(
        (book["title"].as_str(), book["pages"].as_str()),
        (Some("New"), Some("5"))
    );
    assert_eq!(book["author"], "title,pages", "the mask arrived");
    // A mask names fields by their proto names or their JSON names, in the query string or in
    // the body.
    for path in [
        "/v1/shelves/s/books/1?update_mask=publish_time,title",
        "/v1/shelves/s/books/1?update_mask=publishTime,title",
        "/v1/shelves/s/books/1?updateMask=publish_time,title",
    ] {
        let reply = call(&suite, &tenant, &token, "PATCH", path, Some(json!({}))).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        assert_eq!(reply.json()["author"], "publish_time,title", "{path}");
    }
    let reply = call(
        &suite,
        &tenant,
        &token,
        "PATCH",
        "/v1/shelves/s/books/1?update_mask=publish__time",
        Some(json!({})),
    )
    .await;
    assert_bad_field(&reply, "update_mask");
    // The body's field cannot come from the query string too.
    let reply = call(
        &suite,
        &tenant,
        &token,
        "PATCH",
        "/v1/shelves/s/books/1?book.title=x",
        Some(json!({})),
    )
    .await;
    assert_bad_field(&reply, "book.title");

    // No body; an empty response.
    let reply = call(
        &suite,
        &tenant,
        &token,
        "DELETE",
        "/v1/shelves/s/books/1?force=true",
        None,
    )
    .await;
    assert_eq!((reply.status, reply.json()), (200, json!({})));

    // An additional binding; its path variable wins over the body.
    let reply = call(
        &suite,
        &tenant,
        &token,
        "PUT",
        "/v1/echo/from-path",
        Some(json!({"string_value": "from-body", "int32_value": 3})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let echoed = reply.json();
    assert_eq!(
        (
            echoed["stringValue"].as_str(),
            echoed["int32Value"].as_i64()
        ),
        (Some("from-path"), Some(3))
    );

    // `response_body`: the HTTP body is one field of the response.
    let reply = call(
        &suite,
        &tenant,
        &token,
        "GET",
        "/v1/shelves/s/books/7/title",
        None,
    )
    .await;
    assert_eq!((reply.status, reply.json()), (200, json!("Book 7 of s")));
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_internal_rpcs() {
    let (suite, tenant, token) = setup().await;
    let reply = call(&suite, &tenant, &token, "GET", "/v1/nothing/here", None).await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (404, "NOT_FOUND".to_owned())
    );
    let reply = call(&suite, &tenant, &token, "GET", "/v1/shelves/s/books", None).await;
    assert_eq!(reply.status, 404, "a prefix of a route is no route");

    let reply = call(&suite, &tenant, &token, "DELETE", "/v1/echo", None).await;
    assert_eq!(
        (reply.status, reply.error_reason()),
        (405, "METHOD_NOT_ALLOWED".to_owned())
    );
    let mut allowed: Vec<&str> = reply.header("allow").unwrap().split(", ").collect();
    allowed.sort_unstable();
    assert_eq!(allowed, ["GET", "POST"]);

    // An RPC marked internal is never routed, whatever its binding.
    let reply = call(&suite, &tenant, &token, "GET", "/v1/internal", None).await;
    assert_eq!(reply.status, 404, "{}", reply.text());
}

#[tokio::test]
async fn raw_bodies_travel_as_http_body() {
    let (suite, tenant, token) = setup().await;
    let reply = suite
        .gateway
        .post("/v1/uploads/report.csv")
        .tenant(&tenant)
        .bearer(&token)
        .body("text/csv", "a,b\n1,2\n")
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({"name": "report.csv", "contentType": "text/csv", "size": "8", "data": "YSxiCjEsMgo="})
    );

    let reply = call(&suite, &tenant, &token, "GET", "/v1/downloads/x.csv", None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/csv"));
    assert_eq!(reply.text(), "name,size\nx.csv,3\n");
}

#[tokio::test]
async fn bad_bodies_are_refused_naming_the_field() {
    let (suite, tenant, token) = setup().await;
    for (body, field) in [
        (json!({"int32_value": "abc"}), "int32_value"),
        (json!({"int32_value": 3_000_000_000_u64}), "int32_value"),
        (json!({"inner": {"level": "high"}}), "inner.level"),
        (json!({"inners": [{}, {"ids": ["x"]}]}), "inners[1].ids[0]"),
        (json!({"color": "COLOR_BLUE"}), "color"),
        (json!({"timestamp": "not a time"}), "timestamp"),
        (json!({"duration": "5 minutes"}), "duration"),
        (json!({"bytes_value": "%%%"}), "bytes_value"),
    ] {
        let reply = call(
            &suite,
            &tenant,
            &token,
            "POST",
            "/v1/echo",
            Some(body.clone()),
        )
        .await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text());
        let error = reply.json();
        let named = error["error"]["details"][0]["fieldViolations"][0]["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(named, field, "{body}: {error}");
    }

    // Unknown fields, and two members of a oneof, are refused, naming them.
    for (body, named) in [
        (json!({"nope": 1}), "nope"),
        (json!({"text_choice": "a", "number_choice": 1}), "choice"),
    ] {
        let reply = call(&suite, &tenant, &token, "POST", "/v1/echo", Some(body)).await;
        assert_eq!(reply.status, 400);
        assert!(reply.text().contains(named), "{}", reply.text());
    }

    // Not JSON, or not an object.
    for raw in ["{\"string_value\":", "[1,2]", "\"text\"", "nul"] {
        let reply = suite
            .gateway
            .post("/v1/echo")
            .tenant(&tenant)
            .bearer(&token)
            .body("application/json", raw)
            .send()
            .await;
        assert_bad_field(&reply, "body");
    }
    // An empty body is an empty message.
    let reply = suite
        .gateway
        .post("/v1/echo")
        .tenant(&tenant)
        .bearer(&token)
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let suite = TestSuite::spawn_with(|config| config.edge.body_limit_bytes = 1024).await;
    let tenant = suite.create_tenant("acme").await;
    let token = suite.token(&tenant);
    let small = json!({"string_value": "x".repeat(900)});
    let reply = call(&suite, &tenant, &token, "POST", "/v1/echo", Some(small)).await;
    assert_eq!(reply.status, 200);
    let large = json!({"string_value": "x".repeat(2000)});
    let reply = call(&suite, &tenant, &token, "POST", "/v1/echo", Some(large)).await;
    assert_eq!(
        (reply.status, reply.error_reason()),
        (413, "PAYLOAD_TOO_LARGE".to_owned())
    );
}

#[tokio::test]
async fn the_suites_own_services_are_served_from_the_embedded_descriptors() {
    let suite = TestSuite::spawn().await;
    let tenant = suite.create_tenant("acme").await;
    // svc-tenant: a path variable with a pattern, a platform administrator's call.
    let reply = suite
        .gateway
        .get(&format!("/api/v1/tenants/{}", tenant.id))
        .bearer(&suite.keys.platform_admin_token())
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["slug"], "acme");
    // svc-auth: a public, tenant-optional RPC.
    let reply = suite.gateway.get("/api/v1/jwks").send().await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        reply.json()["keys"]
            .as_array()
            .is_some_and(|keys| !keys.is_empty())
    );
}
