//! One HTTPS request, as the providers' gateways and the off-site store take
//! them: a new TLS connection a call (a shop makes a few code payments a
//! minute), the host checked against the CA bundle the hub trusts.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::acquirer::iso8583::tls::TlsClient;

/// Where a gateway is: `https://host[:port]/path`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| format!("{url}: a gateway is reached over https://"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse().map_err(|_| format!("{url}: {port} is not a port"))?,
            ),
            None => (authority, 443),
        };
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        Ok(Endpoint {
            host: host.to_string(),
            port,
            path: format!("/{path}"),
        })
    }
}

/// Posts `form` (`application/x-www-form-urlencoded`, UTF-8) to `at`: the
/// answer's status and body, or why there is none (then the request may or
/// may not have been taken).
pub async fn post_form(tls: &TlsClient, at: &Endpoint, form: String) -> Result<(u16, String), String> {
    post_body(tls, at, "application/x-www-form-urlencoded;charset=utf-8", form).await
}

/// Posts `body` as `content_type` to `at`, as [`post_form`] does.
pub async fn post_body(
    tls: &TlsClient,
    at: &Endpoint,
    content_type: &str,
    body: String,
) -> Result<(u16, String), String> {
    let request = hyper::Request::post(&at.path)
        .header(hyper::header::HOST, &at.host)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let (status, body) = send(tls, &at.host, at.port, request).await?;
    let body = String::from_utf8(body.to_vec())
        .map_err(|_| format!("{} answered in a text that is not UTF-8", at.host))?;
    Ok((status, body))
}

/// Sends `request` to `host:port` on a new TLS connection checked by `tls`:
/// the answer's status and body, or why there is none (then the request may
/// or may not have been taken).
pub async fn send<B>(
    tls: &TlsClient,
    host: &str,
    port: u16,
    request: hyper::Request<B>,
) -> Result<(u16, Bytes), String>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut answer = open(tls, host, port, request).await?;
    let body = answer.read_all().await?;
    Ok((answer.status, body))
}

/// An answer whose body is read as it comes (a large download).
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    body: hyper::body::Incoming,
    host: String,
    /// The connection, until the answer is read (or dropped).
    _driver: tokio_util::task::AbortOnDropHandle<Result<(), hyper::Error>>,
}

impl Answer {
    /// The next piece of the body; `None` at its end.
    pub async fn next(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(format!("the answer from {} broke off: {e}", self.host)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// The whole body.
    pub async fn read_all(&mut self) -> Result<Bytes, String> {
        let mut all = Vec::new();
        while let Some(piece) = self.next().await? {
            all.extend_from_slice(&piece);
        }
        Ok(Bytes::from(all))
    }
}

/// Sends `request` as [`send`] does; the body is read from the [`Answer`].
pub async fn open<B>(
    tls: &TlsClient,
    host: &str,
    port: u16,
    request: hyper::Request<B>,
) -> Result<Answer, String>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot reach {host}:{port}: {e}"))?;
    tcp.set_nodelay(true).ok();
    let stream = tls
        .connect(tcp)
        .await
        .map_err(|e| format!("TLS with {host} failed: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP with {host} failed: {e}"))?;
    // The connection goes when the answer is read, or when the caller gives up.
    let driver = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(connection));
    let answer = sender
        .send_request(request)
        .await
        .map_err(|e| format!("no answer from {host}: {e}"))?;
    let (parts, body) = answer.into_parts();
    Ok(Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
        host: host.to_string(),
        _driver: driver,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_address_is_https_with_a_host() {
        let at = Endpoint::parse("https://openapi.alipay.com/gateway.do").unwrap();
        assert_eq!(
            (at.host.as_str(), at.port, at.path.as_str()),
            ("openapi.alipay.com", 443, "/gateway.do")
        );
        let at = Endpoint::parse("https://127.0.0.1:8443/gateway.do").unwrap();
        assert_eq!((at.host.as_str(), at.port), ("127.0.0.1", 8443));
        assert!(Endpoint::parse("http://openapi.alipay.com/gateway.do").is_err());
        assert!(Endpoint::parse("https://:443/x").is_err());
        assert!(Endpoint::parse("https://host:port/x").is_err());
    }
}
