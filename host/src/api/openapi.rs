//! The OpenAPI document of the API. It is generated from the handlers'
//! annotations by the same router builder that registers the routes, so a
//! route cannot exist without being documented; [`render`] then states what
//! the annotations cannot (unsigned ranges, open routes without tokens).

use serde_json::{Value, json};
use utoipa::openapi::schema::{Object, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;

/// The document's fixed part; paths are added as routes are registered.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sandflow",
        description = "Workflows whose tasks run as WebAssembly components. Every error answers \
                       `{\"error\": {\"code\", \"message\"}}` with a 4xx status."
    ),
    modifiers(&BearerTokens),
    components(schemas(ErrorBody)),
    tags(
        (name = "jobs", description = "submit, inspect, cancel and retry jobs"),
        (name = "modules", description = "upload task components"),
        (name = "runners", description = "the runner protocol (runner tokens)"),
        (name = "clusters", description = "pools of runners"),
        (name = "automations", description = "schedules that submit jobs"),
        (name = "host", description = "liveness, counters and this document"),
        (name = "dashboard", description = "the web dashboard's page and files (no token: they hold no data)"),
    )
)]
pub struct ApiDoc;

/// Declares the `admin` and `runner` bearer-token schemes.
struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        for role in ["admin", "runner"] {
            let scheme = HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(format!("a {role} token from the host's token file")));
            components.add_security_scheme(role, SecurityScheme::Http(scheme.build()));
        }
    }
}

/// The document as served. Unsigned integers get their upper bound (the
/// annotations give only `minimum: 0`), tuples their length, and a host
/// without tokens drops every security requirement, since its routes are
/// open (loopback only).
pub fn render(doc: &utoipa::openapi::OpenApi, open: bool) -> String {
    let mut value = serde_json::to_value(doc).unwrap_or(Value::Null);
    state_bounds(&mut value);
    if open {
        drop_security(&mut value);
    }
    value.to_string()
}

/// Gives every `integer` with `minimum: 0` and a 32- or 64-bit format the
/// maximum of its Rust type (dropping the signed format it was given), and
/// every tuple (`prefixItems` with no further items) its exact length.
fn state_bounds(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let unsigned = map.get("minimum") == Some(&json!(0)) && !map.contains_key("maximum");
            let max = match map.get("format").and_then(Value::as_str) {
                Some("int32") if unsigned => Some(json!(u32::MAX)),
                Some("int64") if unsigned => Some(json!(u64::MAX)),
                _ => None,
            };
            if let Some(max) = max {
                map.remove("format");
                map.insert("maximum".into(), max);
            }
            let tuple = map.get("prefixItems").and_then(Value::as_array).map(Vec::len);
            if let Some(n) = tuple.filter(|_| map.get("items") == Some(&Value::Bool(false))) {
                map.insert("minItems".into(), json!(n));
            }
            map.values_mut().for_each(state_bounds);
        }
        Value::Array(items) => items.iter_mut().for_each(state_bounds),
        _ => {}
    }
}

/// Removes the security requirements of the document and its operations.
fn drop_security(doc: &mut Value) {
    let Some(map) = doc.as_object_mut() else { return };
    map.remove("security");
    if let Some(Value::Object(components)) = map.get_mut("components") {
        components.remove("securitySchemes");
    }
    let Some(Value::Object(paths)) = map.get_mut("paths") else { return };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for op in item.values_mut().filter_map(Value::as_object_mut) {
            op.remove("security");
        }
    }
}

/// A string that is one of `names`.
fn one_of_names(names: impl IntoIterator<Item = &'static str>) -> Object {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names)).build()
}

/// A log level's name.
pub fn log_level() -> Object {
    crate::protocol::log_level_schema()
}

/// A diagram theme.
pub fn theme() -> Object {
    one_of_names(["light", "dark"])
}

/// An RFC 3339 time or a plain date.
pub fn time_or_date() -> RefOr<Schema> {
    let string = |format| {
        ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(format)))
    };
    RefOr::T(Schema::OneOf(
        OneOfBuilder::new().item(string(KnownFormat::DateTime)).item(string(KnownFormat::Date)).build(),
    ))
}

/// Bytes of any kind (a request or response body that is not JSON).
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl utoipa::ToSchema for Binary {}

/// A secret's value as a request body: 1 to 64 KiB of UTF-8, described as
/// at most 16,384 characters (which cannot exceed 64 KiB).
pub struct SecretText;

impl utoipa::PartialSchema for SecretText {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(16_384)).into()
    }
}

impl utoipa::ToSchema for SecretText {}
