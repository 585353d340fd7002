//! The API's answers gzipped for a browser that accepts it: a page of
//! receipts or a month's report is repetitive JSON that shrinks several
//! times over, and an owner's phone on a weak shop Wi-Fi feels every
//! kilobyte. The page's
//! own files are compressed at build time (`assets.rs`) and pass through;
//! so do live feeds (their length is not known) and answers too small to
//! gain.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use http_body_util::BodyExt;
use warp::http::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, VARY};
use warp::Reply;

/// Answers shorter than this go as they are (gzip's own header and the
/// work would cost more than the bytes saved).
const AT_LEAST: u64 = 1024;
/// Answers longer than this are packed off the async threads (a CSV export
/// of a busy quarter is tens of megabytes), and with gzip's fastest level.
const LARGE: u64 = 256 * 1024;

/// Whether `Accept-Encoding` names `coding` without refusing it (`q=0`).
pub fn accepts(header: Option<&str>, coding: &str) -> bool {
    header.is_some_and(|h| {
        h.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let named = parts.next().is_some_and(|c| c.eq_ignore_ascii_case(coding));
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            named && !refused
        })
    })
}

/// Whether the request's headers accept gzip.
pub fn wants_gzip(headers: &HeaderMap) -> bool {
    accepts(
        headers.get("accept-encoding").and_then(|v| v.to_str().ok()),
        "gzip",
    )
}

/// Text worth packing: JSON and CSV.
fn packable(headers: &HeaderMap) -> bool {
    let kind = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    (kind.starts_with("application/json") || kind.starts_with("text/csv"))
        && !headers.contains_key(CONTENT_ENCODING)
}

fn gzip(plain: &[u8], level: Compression) -> std::io::Result<Vec<u8>> {
    let mut out = GzEncoder::new(Vec::with_capacity(plain.len() / 4 + 64), level);
    out.write_all(plain)?;
    out.finish()
}

/// `reply` gzipped when it is JSON or CSV of a known length of at least
/// [`AT_LEAST`]; otherwise as it was. The caller has checked that the
/// client accepts gzip.
pub async fn gzipped(reply: warp::reply::Response) -> warp::reply::Response {
    let size = hyper::body::Body::size_hint(reply.body()).exact();
    let Some(size) = size.filter(|n| *n >= AT_LEAST && packable(reply.headers())) else {
        return reply;
    };
    let (mut parts, body) = reply.into_parts();
    let plain = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            tracing::warn!(error = %e, "an answer could not be read to compress it");
            let mut failed = warp::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
            failed
                .headers_mut()
                .insert(VARY, HeaderValue::from_static("accept-encoding"));
            return failed;
        }
    };
    let packed = if size > LARGE {
        let plain = plain.clone();
        tokio::task::spawn_blocking(move || gzip(&plain, Compression::fast()))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
    } else {
        gzip(&plain, Compression::default())
    };
    let headers = &mut parts.headers;
    headers.append(VARY, HeaderValue::from_static("accept-encoding"));
    match packed {
        Ok(packed) => {
            headers.remove(CONTENT_LENGTH);
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            warp::reply::Response::from_parts(parts, packed.into())
        }
        // Memory, most likely: the answer goes as it is.
        Err(e) => {
            tracing::warn!(error = %e, "an answer could not be compressed; sent as it is");
            warp::reply::Response::from_parts(parts, plain.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn json_of(len: usize) -> warp::reply::Response {
        let text = serde_json::json!({ "rows": "x".repeat(len) });
        warp::reply::json(&text).into_response()
    }

    async fn body(reply: warp::reply::Response) -> Vec<u8> {
        reply.into_body().collect().await.unwrap().to_bytes().to_vec()
    }

    #[test]
    fn accept_encoding_is_read_as_browsers_send_it() {
        assert!(accepts(Some("gzip, deflate, br, zstd"), "gzip"));
        assert!(accepts(Some("br;q=1.0, GZIP;q=0.5"), "gzip"));
        assert!(!accepts(Some("gzip;q=0, br"), "gzip"));
        assert!(!accepts(Some("identity"), "gzip"));
        assert!(!accepts(Some("xgzip"), "gzip"));
        assert!(!accepts(None, "gzip"));
    }

    #[tokio::test]
    async fn a_large_json_answer_is_gzipped_and_unpacks_to_itself() {
        let plain = body(json_of(50_000)).await;
        let reply = gzipped(json_of(50_000)).await;
        assert_eq!(reply.headers()[CONTENT_ENCODING], "gzip");
        assert_eq!(reply.headers()[VARY], "accept-encoding");
        let packed = body(reply).await;
        assert!(
            packed.len() * 20 < plain.len(),
            "{} of {}",
            packed.len(),
            plain.len()
        );
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(packed.as_slice())
            .read_to_end(&mut unpacked)
            .unwrap();
        assert_eq!(unpacked, plain);
    }

    #[tokio::test]
    async fn small_answers_streams_and_files_already_packed_go_as_they_are() {
        let small = gzipped(json_of(10)).await;
        assert!(!small.headers().contains_key(CONTENT_ENCODING));

        let page = warp::reply::with_header(vec![b'a'; 50_000], CONTENT_TYPE, "text/html").into_response();
        assert!(!gzipped(page).await.headers().contains_key(CONTENT_ENCODING));

        let mut packed = json_of(50_000);
        packed
            .headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert_eq!(gzipped(packed).await.headers()[CONTENT_ENCODING], "br");

        let feed = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(vec![b'x'; 50_000])]);
        let mut streamed = warp::reply::stream(feed).into_response();
        streamed
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(!gzipped(streamed).await.headers().contains_key(CONTENT_ENCODING));
    }
}
