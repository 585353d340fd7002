//! The page's static files, compiled in from the repository's `web/` folder.

use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use warp::{Filter, Rejection, Reply};

const INDEX: &str = include_str!("../../../web/index.html");
const APP_JS: &str = include_str!("../../../web/app.js");
const STYLE: &str = include_str!("../../../web/style.css");

fn file(body: &'static str, content_type: &'static str) -> impl Reply {
    warp::reply::with_header(
        warp::reply::with_header(body, CONTENT_TYPE, content_type),
        CACHE_CONTROL,
        "no-cache",
    )
}

pub fn routes() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let index = warp::path::end().map(|| file(INDEX, "text/html; charset=utf-8"));
    let app = warp::path!("app.js").map(|| file(APP_JS, "text/javascript; charset=utf-8"));
    let style = warp::path!("style.css").map(|| file(STYLE, "text/css; charset=utf-8"));
    warp::get().and(index.or(app).or(style))
}
