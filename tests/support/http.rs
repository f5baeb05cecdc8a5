//! The bit of HTTP/1.1 the test proxies speak: read one request (headers, then a body of
//! `Content-Length` bytes) and answer it with `Connection: close`. One request per connection;
//! clients reconnect as they would to a real node.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

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
    let mut first = String::new();
    if reader.read_line(&mut first).await? == 0 {
        return Ok(None);
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(Some((reader.into_inner(), first.trim_end().to_string(), body)))
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
