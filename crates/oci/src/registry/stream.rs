//! Blob reads answered as a stream, for the verifying proxy: the body is not read here, so
//! a blob of any size passes through without being held in memory.
//!
//! Nothing is verified here: the caller passes bytes on to a client that checks them
//! against the digest it asked for (blobs are content-addressed), or hashes them itself.

use reqwest::{Method, StatusCode};

use super::client::Req;
use super::error::RegistryError;
use super::repo::{header, RegistryRepo};
use crate::Digest;

/// The registry's answer to a blob GET, body unread.
#[derive(Debug)]
pub struct BlobStream {
    /// 200 (whole blob) or 206 (the range asked for).
    pub status: u16,
    pub content_length: Option<u64>,
    /// `Content-Range` of a 206.
    pub content_range: Option<String>,
    pub content_type: Option<String>,
    /// The body, to be read by the caller (`bytes_stream`, `chunk`).
    pub response: reqwest::Response,
}

/// What a blob GET found.
#[derive(Debug)]
#[non_exhaustive]
pub enum BlobAnswer {
    Found(Box<BlobStream>),
    /// 404: the repository has no such blob.
    NotFound,
    /// 416: the range asked for is outside the blob.
    RangeNotSatisfiable,
}

impl RegistryRepo {
    /// GET (or HEAD) the blob `digest`, optionally a `Range` of it (`bytes=0-99`), and
    /// return the answer with its body unread.
    ///
    /// # Errors
    /// [`RegistryError`] for transport failures and statuses other than 200, 206, 404, 416.
    ///
    /// # Security
    /// The bytes are not checked against `digest`: whoever reads them must.
    pub async fn blob_stream(
        &self,
        digest: &Digest,
        range: Option<&str>,
        head: bool,
    ) -> Result<BlobAnswer, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let method = if head { Method::HEAD } else { Method::GET };
        let resp = self
            .client
            .send(&Req {
                method: method.clone(),
                url: url.clone(),
                accept: None,
                content_type: None,
                body: None,
                scope: &self.pull_scope,
                range,
            })
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => return Ok(BlobAnswer::NotFound),
            StatusCode::RANGE_NOT_SATISFIABLE => return Ok(BlobAnswer::RangeNotSatisfiable),
            StatusCode::OK | StatusCode::PARTIAL_CONTENT => {}
            _ => return Err(self.client.status_error(&method, &url, resp).await),
        }
        let content_length = header(&resp, "content-length").and_then(|v| v.parse().ok());
        Ok(BlobAnswer::Found(Box::new(BlobStream {
            status: resp.status().as_u16(),
            content_length,
            content_range: header(&resp, "content-range").map(str::to_owned),
            content_type: header(&resp, "content-type").map(str::to_owned),
            response: resp,
        })))
    }
}
