//! A tower [`Layer`] that counts HTTP responses, for axum 0.8 / tower 0.5:
//! [`HttpMetricsLayer`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tower::{Layer, Service};

use crate::client::Client;
use crate::http_series::HttpSeries;
use crate::sample::Sample;

// Here rather than in client.rs, so that the client needs not know the
// layer (the layer needs the client): no import circle.
impl Client {
    /// A tower layer counting the responses of the service it wraps under
    /// `prefix` (see [`HttpMetricsLayer`]).
    pub fn http_layer(&self, prefix: &str) -> HttpMetricsLayer {
        HttpMetricsLayer::new(self.clone(), prefix)
    }
}

/// A tower [`Layer`] counting the responses of the service it wraps.
///
/// For every request it records, under its prefix (`http` below):
/// - `http.requests`: one per request;
/// - `http.response.<status>` (e.g. `http.response.400`) and
///   `http.response.<class>` (e.g. `http.response.4xx`);
/// - `http.errors` instead of those two when the inner service fails;
/// - `http.latency`: a timing (`ms`) from the call to the response headers.
///
/// All of it goes into the client's queue as one event, so the cost per
/// request is one queue push; the names are built once, when the layer is.
///
/// ```no_run
/// # fn app(client: hawkeye_client::Client) -> axum::Router {
/// axum::Router::new()
///     .route("/ping", axum::routing::get(|| async { "pong" }))
///     .layer(client.http_layer("http"))
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HttpMetricsLayer {
    series: Option<Arc<HttpSeries>>,
    client: Client,
}

impl HttpMetricsLayer {
    /// A layer recording under `prefix` (e.g. `"http"` gives
    /// `http.response.400`). A prefix that is not a valid metric name is
    /// cleaned like any name the client is given.
    pub fn new(client: Client, prefix: &str) -> HttpMetricsLayer {
        HttpMetricsLayer {
            series: HttpSeries::new(client.series_builder(), prefix).map(Arc::new),
            client,
        }
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;

    fn layer(&self, inner: S) -> HttpMetrics<S> {
        HttpMetrics {
            inner,
            series: self.series.clone(),
            client: self.client.clone(),
        }
    }
}

/// The service made by [`HttpMetricsLayer`].
#[derive(Debug, Clone)]
pub struct HttpMetrics<S> {
    inner: S,
    series: Option<Arc<HttpSeries>>,
    client: Client,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for HttpMetrics<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        ResponseFuture {
            inner: self.inner.call(req),
            start: Instant::now(),
            series: self.series.clone(),
            client: self.client.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`HttpMetrics`]: records when the inner
    /// service answers.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        start: Instant,
        series: Option<Arc<HttpSeries>>,
        client: Client,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Some(series) = this.series.take() {
            let status = result.as_ref().ok().map(|r| r.status().as_u16());
            this.client.enqueue(Sample::Http {
                series,
                status,
                latency_ms: this.start.elapsed().as_secs_f64() * 1000.0,
            });
        }
        Poll::Ready(result)
    }
}
