//! Outbound HTTP through the host (`wasmplug:host/http`).
//!
//! The host makes the request on the plugin's behalf, after checking it
//! against the plugin's allow-list (scheme, host, port, method) and
//! resolving the name itself (loopback, private and link-local addresses are
//! refused unless granted). Redirects are followed by the host, each one
//! checked again. Bodies are capped in bytes, and a request never outlives
//! the call that made it.
//!
//! Build a request with [`get`], [`post`] or [`request`], add headers and a
//! body, then [`send`](Request::send) it. Every refusal is an [`Error`] the
//! plugin can handle; a denial says what the host would have to grant.
//!
//! ```no_run
//! # // no_run: the import only exists inside a wasm host.
//! use wasmplug_guest::{http, Error};
//!
//! fn fetch_rates() -> Result<String, Error> {
//!     let response = http::get("https://api.example.com/rates")
//!         .header("accept", "application/json")
//!         .send();
//!     match response {
//!         Ok(r) if r.is_success() => Ok(r.text().into_owned()),
//!         Ok(r) => Err(Error::Invalid(format!("status {}", r.status))),
//!         // Not granted: fall back instead of failing the call.
//!         Err(Error::Denied(_)) => Ok(String::from("{}")),
//!         Err(e) => Err(e),
//!     }
//! }
//! ```

use std::borrow::Cow;

use crate::host::{self, HostRequest, HostResponse};
use crate::Error;

/// A request being built; send it with [`Request::send`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a request does nothing until it is sent"]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Starts a request with any method (`"PUT"`, `"DELETE"` ...) to `url`, an
/// absolute `http://` or `https://` URL.
pub fn request(method: &str, url: &str) -> Request {
    Request {
        method: method.to_ascii_uppercase(),
        url: url.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// Starts a `GET` request to `url`.
pub fn get(url: &str) -> Request {
    request("GET", url)
}

/// Starts a `POST` request to `url`; set its body with [`Request::body`].
pub fn post(url: &str) -> Request {
    request("POST", url)
}

impl Request {
    /// Adds a header field. A name may repeat. The host sets `host`,
    /// `content-length`, `transfer-encoding`, `connection`, `upgrade`, `te`
    /// and `proxy-*` itself and refuses them ([`Error::Invalid`]).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body (bytes or a string).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The method, upper case.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends the request and returns the final response (after any
    /// redirects the host followed), whatever its status.
    ///
    /// # Errors
    ///
    /// - [`Error::Denied`]: HTTP is not granted, or the request (or a
    ///   redirect) leaves the allow-list, resolves to a refused address, or
    ///   redirects too often. The message names what to grant.
    /// - [`Error::TooLarge`]: the body, or the response, exceeds the host's
    ///   cap in bytes.
    /// - [`Error::Timeout`]: the host's timeout for the request passed.
    /// - [`Error::Connection`]: resolution, connecting, TLS or the exchange
    ///   failed.
    /// - [`Error::Invalid`]: a malformed URL, method or header.
    pub fn send(self) -> Result<Response, Error> {
        let request = HostRequest {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
        };
        host::http::send(&request)
            .map(Response::from)
            .map_err(Error::from)
    }
}

/// A response from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// Header fields in order, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as received: the host asks for no content-encoding unless
    /// the request set `accept-encoding`, and never decodes one.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text; invalid UTF-8 becomes U+FFFD.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

impl From<HostResponse> for Response {
    fn from(r: HostResponse) -> Self {
        Response {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::{reset, with_state};
    use crate::host::HostHttpError;

    #[test]
    fn builder_sends_method_url_headers_and_body() {
        reset();
        let response = post("http://example.com/x")
            .header("x-a", "1")
            .body("hello")
            .send()
            .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), "hello");
        assert_eq!(response.header("Content-Type"), Some("text/plain"));
        assert!(response.is_success());
        with_state(|state| {
            let sent = &state.requests[0];
            assert_eq!(sent.method, "POST");
            assert_eq!(sent.url, "http://example.com/x");
            assert_eq!(sent.headers, vec![("x-a".to_string(), "1".to_string())]);
        });
    }

    #[test]
    fn host_errors_map_to_sdk_errors() {
        let cases = [
            (HostHttpError::Denied("d".into()), Error::Denied("d".into())),
            (
                HostHttpError::TooLarge("t".into()),
                Error::TooLarge("t".into()),
            ),
            (
                HostHttpError::Timeout("t".into()),
                Error::Timeout("t".into()),
            ),
            (
                HostHttpError::Connection("c".into()),
                Error::Connection("c".into()),
            ),
            (
                HostHttpError::Invalid("i".into()),
                Error::Invalid("i".into()),
            ),
        ];
        for (host, expected) in cases {
            reset();
            with_state(|state| state.http_answer = Some(Err(host)));
            assert_eq!(request("put", "http://e.com/").send(), Err(expected));
        }
    }

    #[test]
    fn denied_when_not_granted() {
        reset();
        with_state(|state| {
            state.denied.insert("http");
        });
        assert!(matches!(get("http://e.com/").send(), Err(Error::Denied(_))));
    }
}
