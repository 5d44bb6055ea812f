//! Helpers shared by unit tests.

/// A client that is never called: every request fails (no unit test reaches an API server).
pub fn offline_client(namespace: &str) -> kube::Client {
    let service = tower::service_fn(|_req: http::Request<kube::client::Body>| async {
        Err::<http::Response<kube::client::Body>, std::io::Error>(std::io::Error::other(
            "no API server in unit tests",
        ))
    });
    kube::Client::new(service, namespace)
}
