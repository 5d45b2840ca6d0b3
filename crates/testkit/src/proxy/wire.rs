//! Just enough HTTP/1.1 for the adversarial proxy: read a request, forward it to the
//! registry and read the whole answer (`Content-Length`, chunked, or until the end of the
//! stream), and write message heads.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use super::{MAX_BUFFERED, SOCKET_TIMEOUT};

#[derive(Debug)]
pub(super) struct Request {
    pub(super) method: String,
    pub(super) target: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub(super) struct Response {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

pub(super) fn query_param<'a>(target: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = target.split_once('?')?;
    query.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
    })
}

pub(super) fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    headers.push((name.to_owned(), value.to_owned()));
}

pub(super) fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Request> {
    let (line, headers) = read_head(reader)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let len = header_value(&headers, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    if len > MAX_BUFFERED {
        return Err(std::io::Error::other(
            "request body too large for the proxy",
        ));
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    Ok(Request {
        method,
        target,
        headers,
        body,
    })
}

/// The start line and headers of a message.
pub(super) fn read_head<R: BufRead>(
    reader: &mut R,
) -> std::io::Result<(String, Vec<(String, String)>)> {
    let mut start = String::new();
    let mut total = reader.read_line(&mut start)?;
    if total == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed before a request",
        ));
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        total += n;
        if n == 0 || total > 256 * 1024 {
            return Err(std::io::Error::other("unterminated or huge message head"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    Ok((start.trim_end().to_owned(), headers))
}

pub(super) fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Send `req` to the registry with `target` and read its whole answer.
pub(super) fn forward(upstream: &str, req: &Request, target: &str) -> std::io::Result<Response> {
    let mut up = TcpStream::connect(upstream)?;
    up.set_read_timeout(Some(SOCKET_TIMEOUT))?;
    let mut head = format!("{} {target} HTTP/1.1\r\nHost: {upstream}\r\n", req.method);
    for (k, v) in &req.headers {
        let skip = ["host", "connection", "content-length", "accept-encoding"];
        if !skip.iter().any(|s| k.eq_ignore_ascii_case(s)) {
            let _ = write!(head, "{k}: {v}\r\n");
        }
    }
    if !req.body.is_empty() || matches!(req.method.as_str(), "PUT" | "POST" | "PATCH") {
        let _ = write!(head, "Content-Length: {}\r\n", req.body.len());
    }
    head.push_str("Connection: close\r\n\r\n");
    up.write_all(head.as_bytes())?;
    up.write_all(&req.body)?;
    let mut reader = BufReader::new(up);
    let (line, mut headers) = read_head(&mut reader)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let no_body = req.method == "HEAD" || status == 204 || status == 304 || status < 200;
    let chunked = header_value(&headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let mut body = Vec::new();
    if no_body {
    } else if chunked {
        body = read_chunked(&mut reader)?;
    } else if let Some(len) =
        header_value(&headers, "content-length").and_then(|v| v.parse::<usize>().ok())
    {
        if len > MAX_BUFFERED {
            return Err(std::io::Error::other(
                "registry answer too large for the proxy",
            ));
        }
        body = vec![0; len];
        reader.read_exact(&mut body)?;
    } else {
        reader.take(MAX_BUFFERED as u64).read_to_end(&mut body)?;
    }
    headers.retain(|(k, _)| {
        !k.eq_ignore_ascii_case("transfer-encoding") && !k.eq_ignore_ascii_case("connection")
    });
    if no_body {
        // Keep the registry's Content-Length of a HEAD answer; write_response adds one for
        // the others.
    } else {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case("content-length"));
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

pub(super) fn read_chunked<R: BufRead>(reader: &mut R) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let size = size.trim().split(';').next().unwrap_or_default();
        let n = usize::from_str_radix(size, 16).map_err(std::io::Error::other)?;
        if body.len() + n > MAX_BUFFERED {
            return Err(std::io::Error::other(
                "chunked answer too large for the proxy",
            ));
        }
        if n == 0 {
            let mut rest = String::new();
            while reader.read_line(&mut rest)? > 2 {
                rest.clear();
            }
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + n, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}

pub(super) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Status",
    }
}

pub(super) fn head_bytes(
    status: u16,
    headers: &[(String, String)],
    length: Option<u64>,
) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        if !(length.is_some() && k.eq_ignore_ascii_case("content-length")) {
            let _ = write!(head, "{k}: {v}\r\n");
        }
    }
    if let Some(len) = length {
        let _ = write!(head, "Content-Length: {len}\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    head.into_bytes()
}

pub(super) fn has_body(resp: &Response) -> bool {
    !resp.body.is_empty() || header_value(&resp.headers, "content-length").is_none()
}
