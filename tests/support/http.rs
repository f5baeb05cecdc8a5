//! The bit of HTTP/1.1 the test servers speak: read a request (headers, then a body of
//! `Content-Length` bytes). The proxies answer with `Connection: close`, one request per
//! connection, and clients reconnect as they would to a real node; the sink receivers keep
//! connections alive ([`read_request_kept`]).

use std::collections::BTreeMap;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The largest body a test server reads.
const MAX_BODY: usize = 16 << 20;

/// One request read off a connection.
pub struct Request {
    pub method: String,
    /// The path and query.
    pub target: String,
    /// Header names in lower case; a repeated header's values joined with `, `.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// The client asked to close after this one.
    pub close: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// Reads one request: the stream to answer on and the body. `None`: the client left.
pub async fn read_request(stream: TcpStream) -> std::io::Result<Option<(TcpStream, Vec<u8>)>> {
    Ok(read_request_with_line(stream).await?.map(|(stream, _, body)| (stream, body)))
}

/// Reads one request: the stream to answer on, the request line (`GET /path?query HTTP/1.1`)
/// and the body. `None`: the client left.
pub async fn read_request_with_line(
    stream: TcpStream,
) -> std::io::Result<Option<(TcpStream, String, Vec<u8>)>> {
    let mut reader = BufReader::new(stream);
    let Some(request) = read_request_kept(&mut reader).await? else { return Ok(None) };
    let line = format!("{} {} HTTP/1.1", request.method, request.target);
    Ok(Some((reader.into_inner(), line, request.body)))
}

/// Reads one request off a kept-alive connection: the line, the headers, a body of
/// `Content-Length` bytes (16 MiB at most). `None` when the client closed the connection between
/// requests.
pub async fn read_request_kept(reader: &mut (impl AsyncBufRead + Unpin)) -> std::io::Result<Option<Request>> {
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("not an HTTP request line"));
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut close = version == "HTTP/1.0";
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Err(invalid("the connection closed inside the headers"));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| invalid("a header without a colon"))?;
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
        headers.entry(name).and_modify(|v| *v = format!("{v}, {value}")).or_insert(value);
    }
    if let Some(connection) = headers.get("connection") {
        close = connection.eq_ignore_ascii_case("close");
    }
    if headers.contains_key("transfer-encoding") {
        return Err(invalid("chunked bodies are not read by this receiver"));
    }
    let length: usize = match headers.get("content-length") {
        Some(n) => n.parse().map_err(|_| invalid("Content-Length is not a number"))?,
        None => 0,
    };
    if length > MAX_BODY {
        return Err(invalid("a body larger than this receiver reads"));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(Some(Request { method, target, headers, body, close }))
}

/// Answers with a JSON body, extra headers, and closes.
pub async fn respond(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}
