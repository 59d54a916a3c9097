//! Request extractors whose rejections are JSON errors.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON object body (`application/json` or `application/*+json`, else a
/// 415); malformed JSON is a 400, a wrong shape (an array, say) a 422. A number written with a zero
/// fraction (`3.0`) counts as the integer it equals, as in JSON Schema.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = media_type(&req).is_some_and(|e| {
            let e = e.to_ascii_lowercase();
            e == "application/json" || (e.starts_with("application/") && e.ends_with("+json"))
        });
        if !json {
            return Err(ApiError::new(
                e415(),
                "unsupported_media_type",
                "expected `Content-Type: application/json`",
            ));
        }
        let bytes = body_bytes(req, state).await?;
        // Every body of this API is an object; serde would also read a
        // struct from an array of its fields.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b != b'{') {
            return Err(ApiError::unprocessable("invalid_request", "the body must be a JSON object"));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(JsonRejection::JsonDataError(e)) => match with_integral_numbers(&bytes) {
                Some(v) => Ok(Json(v)),
                None => Err(ApiError::unprocessable("invalid_request", e.body_text())),
            },
            Err(e) => Err(ApiError::bad_request("invalid_json", e.body_text())),
        }
    }
}

/// `bytes` read again with every whole-valued float as an integer; `None`
/// when that changes nothing or still does not fit `T`.
fn with_integral_numbers<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    // Written out again rather than read from the value, so raw JSON fields
    // (task inputs) can be read too.
    let fixed = integral(&mut value).then(|| serde_json::to_vec(&value).ok()).flatten()?;
    serde_json::from_slice(&fixed).ok()
}

/// Rewrites every whole float in `v` as the integer it equals; answers
/// whether there was one.
fn integral(v: &mut serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            // A whole float in range of u64 or i64 is exactly that integer.
            let f = n.as_f64().unwrap_or(f64::NAN);
            let whole =
                f.fract() == 0.0 && (-9.223_372_036_854_776e18..1.844_674_407_370_955_2e19).contains(&f);
            if whole {
                *v = if f < 0.0 { (f as i64).into() } else { (f as u64).into() };
            }
            whole
        }
        serde_json::Value::Array(items) => items.iter_mut().fold(false, |any, i| integral(i) | any),
        serde_json::Value::Object(map) => map.values_mut().fold(false, |any, i| integral(i) | any),
        _ => false,
    }
}

/// The essence of the request's `Content-Type` (`type/subtype`), if any.
fn media_type(req: &Request) -> Option<&str> {
    let value = req.headers().get(axum::http::header::CONTENT_TYPE)?.to_str().ok()?;
    value.split(';').next().map(str::trim)
}

/// The whole body, within the route's limit (413 beyond it).
async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    match Bytes::from_request(req, state).await {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(too_large(e.body_text())),
        Err(e) => Err(ApiError::bad_request("invalid_body", e.body_text())),
    }
}

/// Refuses at once a request whose announced length (`Content-Length`) is
/// over `limit`, before any of its body is read.
pub async fn announced_length(
    axum::extract::State(limit): axum::extract::State<usize>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let announced = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(n) if n > limit as u64 => axum::response::IntoResponse::into_response(too_large(format!(
            "{n} bytes, over the limit of {limit}"
        ))),
        _ => next.run(request).await,
    }
}

fn too_large(detail: String) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("request body too large: {detail}"),
    )
}

/// A module's bytes, sent as `application/wasm` (anything else is a 415,
/// so a browser's cross-site "simple" request cannot upload); one over the
/// route's limit is a 413.
pub struct WasmBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for WasmBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !media_type(&req).is_some_and(|e| e.eq_ignore_ascii_case("application/wasm")) {
            return Err(ApiError::new(
                e415(),
                "unsupported_media_type",
                "expected `Content-Type: application/wasm`",
            ));
        }
        presized_body(req).await.map(WasmBody)
    }
}

/// The whole body, within the route's limit (413 beyond it), read into one
/// buffer of its announced length (which `announced_length` bounds): a
/// large upload is held once, not once in pieces and again joined.
async fn presized_body(req: Request) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt as _;
    let announced = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut body = axum::RequestExt::into_limited_body(req);
    let mut buf = bytes::BytesMut::with_capacity(announced.unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(unread)?;
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Why a body could not be read: over the route's limit (413), or cut off.
fn unread(e: axum::Error) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(cause) = source {
        if cause.is::<http_body_util::LengthLimitError>() {
            return too_large(cause.to_string());
        }
        source = cause.source();
    }
    ApiError::bad_request("invalid_body", format!("the request body could not be read: {e}"))
}

fn e415() -> StatusCode {
    StatusCode::UNSUPPORTED_MEDIA_TYPE
}

/// A path parameter; one that cannot be read (invalid UTF-8, say) is a
/// 400 `invalid_path`, as JSON like every other error.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))
    }
}

/// Query parameters; a bad one is a 400.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Counts {
        n: u32,
        list: Vec<i64>,
        raw: Box<serde_json::value::RawValue>,
    }

    #[test]
    fn whole_floats_read_as_integers() {
        let read: Counts = with_integral_numbers(br#"{"n": 3.0, "list": [-2.0, 5], "raw": [1.0]}"#).unwrap();
        assert_eq!((read.n, read.list, read.raw.get()), (3, vec![-2, 5], "[1]"));
        #[derive(serde::Deserialize)]
        struct Big {
            lease: u64,
        }
        let big: Big = with_integral_numbers(br#"{"lease": 1.8e19}"#).unwrap();
        assert_eq!(big.lease, 18_000_000_000_000_000_000);
        assert!(with_integral_numbers::<Counts>(br#"{"n": 3.5, "list": [], "raw": 1}"#).is_none());
        assert!(with_integral_numbers::<Counts>(br#"{"n": 3, "list": [], "raw": 1}"#).is_none());
    }
}
