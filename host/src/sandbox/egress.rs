//! Outbound HTTP from tasks (`wasi:http`), denied unless the destination is on
//! the host's allow-list or the task's module's. The check runs on the final
//! request URI, after the guest's headers are applied: the guest cannot set
//! `Host` (a forbidden header), the `Host` sent is the checked authority, and
//! redirects are not followed (a redirect reaches the guest as a response,
//! and following it is a new request, checked again). A name is resolved
//! first, and refused (`destination-IP-prohibited`) if any address it
//! resolves to is special (this machine, private or link-local networks,
//! see [`is_special_address`]): only an entry naming such an address
//! literally reaches it. A plain-HTTP request is then sent to the address
//! that was checked (its `Host` header keeps the name), so a name that
//! resolves differently a moment later (DNS rebinding) cannot redirect it;
//! an HTTPS request connects by name, and a rebound address would have to
//! present a valid certificate for that name.

use std::future::Future;
use std::sync::Arc;

use http::uri::Scheme;
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::model::{HostPattern, is_special_address};

/// The answer `send_request` gives the `wasi:http` implementation.
type Sent = Box<
    dyn Future<
            Output = Result<
                (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>),
                Error,
            >,
        > + Send,
>;

/// The grants of one attempt.
pub struct Egress {
    host: Arc<Vec<HostPattern>>,
    module: Vec<HostPattern>,
}

impl Egress {
    /// Grants from the host's list and the module's.
    pub fn new(host: Arc<Vec<HostPattern>>, module: Vec<HostPattern>) -> Self {
        Egress { host, module }
    }

    /// Whether a request to `host` on `port` is allowed.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        self.host.iter().chain(&self.module).any(|p| p.allows(host, port))
    }
}

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        let uri = request.uri();
        let default_port = if uri.scheme() == Some(&Scheme::HTTPS) { 443 } else { 80 };
        let (host, port) = (uri.host().unwrap_or(""), uri.port_u16().unwrap_or(default_port));
        if !self.allows(host, port) {
            tracing::debug!(%host, port, "outbound HTTP denied");
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let name = (host.parse::<std::net::IpAddr>().is_err()).then(|| (host.to_owned(), port));
        let mut request = request;
        Box::new(async move {
            if let Some((host, port)) = name {
                let checked = resolves_to_public(&host, port).await?;
                if request.uri().scheme() == Some(&Scheme::HTTP) {
                    pin_to(&mut request, checked)?;
                }
            }
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

/// Points `request` at `addr` in place of the name it was checked for.
fn pin_to(request: &mut http::Request<WasiBody>, addr: std::net::SocketAddr) -> Result<(), Error> {
    let mut parts = request.uri().clone().into_parts();
    parts.authority = Some(addr.to_string().parse().map_err(|_| Error::HttpRequestUriInvalid)?);
    *request.uri_mut() = http::Uri::from_parts(parts).map_err(|_| Error::HttpRequestUriInvalid)?;
    Ok(())
}

/// The address of `host` to connect to (its first IPv4 one, else its first);
/// refused when any address it resolves to is special (or there are none).
async fn resolves_to_public(host: &str, port: u16) -> Result<std::net::SocketAddr, Error> {
    let dns = |e: std::io::Error| Error::DnsError { rcode: Some(e.to_string()), info_code: None };
    let addrs: Vec<_> = tokio::net::lookup_host((host, port)).await.map_err(dns)?.collect();
    if addrs.is_empty() {
        return Err(Error::DestinationNotFound);
    }
    if let Some(addr) = addrs.iter().find(|a| is_special_address(a.ip())) {
        tracing::debug!(%host, %addr, "outbound HTTP denied: the name resolves to a special address");
        return Err(Error::DestinationIpProhibited);
    }
    // IPv4 first: a machine without an IPv6 route still reaches the name.
    Ok(addrs.iter().copied().find(std::net::SocketAddr::is_ipv4).unwrap_or(addrs[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_request_goes_to_the_checked_address_and_keeps_its_path() {
        let body = http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync();
        let mut request = http::Request::get("http://catalog.example:8080/a/b?c=d").body(body).unwrap();
        pin_to(&mut request, "[2001:db8::1]:8080".parse().unwrap()).unwrap();
        assert_eq!(request.uri().to_string(), "http://[2001:db8::1]:8080/a/b?c=d");
    }

    #[test]
    fn the_host_list_and_the_module_list_both_grant() {
        let host = Arc::new(vec![HostPattern::parse("*.example.com").unwrap()]);
        let egress = Egress::new(host, vec![HostPattern::parse("127.0.0.1:8080").unwrap()]);
        assert!(egress.allows("api.example.com", 443));
        assert!(egress.allows("127.0.0.1", 8080));
        assert!(!egress.allows("127.0.0.1", 80));
        assert!(!Egress::new(Arc::default(), Vec::new()).allows("example.com", 443));
    }
}
