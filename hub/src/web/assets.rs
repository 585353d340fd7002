//! The page's static files, compiled in from the repository's `web/` folder,
//! each also compressed at build time (`build.rs`) with brotli and gzip; a
//! browser gets the smallest copy it accepts.

use warp::http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use warp::{Filter, Rejection, Reply};

struct Asset {
    plain: &'static [u8],
    gzip: &'static [u8],
    brotli: &'static [u8],
    content_type: &'static str,
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            plain: include_bytes!(concat!("../../../web/", $name)),
            gzip: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".gz")),
            brotli: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".br")),
            content_type: $type,
        }
    };
}

const INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");
const APP_JS: Asset = asset!("app.js", "text/javascript; charset=utf-8");
const I18N_JS: Asset = asset!("i18n.js", "text/javascript; charset=utf-8");
const STYLE: Asset = asset!("style.css", "text/css; charset=utf-8");

fn serve(asset: &'static Asset, accept: Option<String>) -> warp::reply::Response {
    let accepts = |coding: &str| {
        accept
            .as_deref()
            .is_some_and(|a| a.split(',').any(|e| e.trim().split(';').next() == Some(coding)))
    };
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
    if let Some(encoding) = encoding {
        headers.insert(CONTENT_ENCODING, warp::http::HeaderValue::from_static(encoding));
    }
    reply
}

pub fn routes() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let accept = warp::header::optional::<String>("accept-encoding");
    let index = warp::path::end().and(accept).map(|a| serve(&INDEX, a));
    let app = warp::path!("app.js").and(accept).map(|a| serve(&APP_JS, a));
    let i18n = warp::path!("i18n.js").and(accept).map(|a| serve(&I18N_JS, a));
    let style = warp::path!("style.css").and(accept).map(|a| serve(&STYLE, a));
    warp::get().and(index.or(app).or(i18n).or(style))
}
