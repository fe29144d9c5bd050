//! Remote user-data resources (`http://`, `https://`) fetched with the datasources' retrying
//! HTTP client, within the same deadline and size cap.

use super::error::{Result, UserDataError};
use super::resource::Fetcher;
use crate::datasource::http::Http;
use crate::datasource::url::redact;

/// A [`Fetcher`] over the retrying HTTP client.
pub struct HttpFetcher {
    http: Http,
}

impl HttpFetcher {
    /// Fetches with `http`.
    pub fn new(http: Http) -> Self {
        HttpFetcher { http }
    }
}

impl Fetcher for HttpFetcher {
    fn fetch(&self, url: &str, field: &str) -> Result<Vec<u8>> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(UserDataError::new(
                field,
                format!("{scheme}: sources are not supported; use http, https or data"),
            ));
        }
        self.http
            .get(url, &[])
            .map_err(|e| UserDataError::new(field, format!("fetching {}: {e}", redact(url))))
    }
}
