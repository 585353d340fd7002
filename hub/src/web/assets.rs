//! The page's static files, compiled in from the repository's `web/` folder,
//! each also compressed at build time (`build.rs`) with brotli and gzip; a
//! browser gets the smallest copy it accepts. Each has an ETag: a browser
//! that has this build's copy gets `304 Not Modified` and no body.

use warp::http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, VARY};
use warp::{Filter, Rejection, Reply};

struct Asset {
    plain: &'static [u8],
    gzip: &'static [u8],
    brotli: &'static [u8],
    etag: &'static str,
    content_type: &'static str,
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            plain: include_bytes!(concat!("../../../web/", $name)),
            gzip: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".gz")),
            brotli: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".br")),
            etag: include_str!(concat!(env!("OUT_DIR"), "/", $name, ".etag")),
            content_type: $type,
        }
    };
}

const INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");
const APP_JS: Asset = asset!("app.js", "text/javascript; charset=utf-8");
const I18N_JS: Asset = asset!("i18n.js", "text/javascript; charset=utf-8");
const STYLE: Asset = asset!("style.css", "text/css; charset=utf-8");
const MANIFEST: Asset = asset!("manifest.webmanifest", "application/manifest+json");
const ICON: Asset = asset!("icon.svg", "image/svg+xml");
const SERVICE_WORKER: Asset = asset!("sw.js", "text/javascript; charset=utf-8");

fn serve(asset: &'static Asset, accept: Option<String>, seen: Option<String>) -> warp::reply::Response {
    let fresh = warp::http::HeaderValue::from_static(asset.etag);
    if seen.is_some_and(|tags| tags.split(',').any(|t| t.trim() == asset.etag || t.trim() == "*")) {
        let mut reply = warp::http::StatusCode::NOT_MODIFIED.into_response();
        reply.headers_mut().insert(ETAG, fresh);
        reply
            .headers_mut()
            .insert(CACHE_CONTROL, warp::http::HeaderValue::from_static("no-cache"));
        return reply;
    }
    let accepts = |coding: &str| super::compress::accepts(accept.as_deref(), coding);
    let (body, encoding) = if accepts("br") {
        (asset.brotli, Some("br"))
    } else if accepts("gzip") {
        (asset.gzip, Some("gzip"))
    } else {
        (asset.plain, None)
    };
    let mut reply = warp::reply::with_header(body, CONTENT_TYPE, asset.content_type).into_response();
    let headers = reply.headers_mut();
    headers.insert(CACHE_CONTROL, warp::http::HeaderValue::from_static("no-cache"));
    headers.insert(VARY, warp::http::HeaderValue::from_static("accept-encoding"));
    headers.insert(ETAG, fresh);
    if let Some(encoding) = encoding {
        headers.insert(CONTENT_ENCODING, warp::http::HeaderValue::from_static(encoding));
    }
    reply
}

pub fn routes() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let accept = warp::header::optional::<String>("accept-encoding")
        .and(warp::header::optional::<String>("if-none-match"));
    let index = warp::path::end().and(accept).map(|a, e| serve(&INDEX, a, e));
    let app = warp::path!("app.js").and(accept).map(|a, e| serve(&APP_JS, a, e));
    let i18n = warp::path!("i18n.js")
        .and(accept)
        .map(|a, e| serve(&I18N_JS, a, e));
    let style = warp::path!("style.css")
        .and(accept)
        .map(|a, e| serve(&STYLE, a, e));
    let manifest = warp::path!("manifest.webmanifest")
        .and(accept)
        .map(|a, e| serve(&MANIFEST, a, e));
    let icon = warp::path!("icon.svg").and(accept).map(|a, e| serve(&ICON, a, e));
    let worker = warp::path!("sw.js")
        .and(accept)
        .map(|a, e| serve(&SERVICE_WORKER, a, e));
    warp::get().and(index.or(app).or(i18n).or(style).or(manifest).or(icon).or(worker))
}
