//! The HTTP side of the test API: one request per connection (`Connection: close`), the
//! request line parsed into a [`Request`], faults applied to the answer, and the status line.

use tokio::net::TcpStream;

use super::chain::{injected_failure, not_implemented};
use super::{ExtraRoutes, Request, SedaChain};
// `super::super`: the support folder in the tests, the crate root in the `seda-devnet` example.
use super::super::http::{read_request_with_line, respond};

fn status_line(status: u16) -> String {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    };
    format!("{status} {reason}")
}

pub(super) async fn serve(
    stream: TcpStream,
    chain: &SedaChain,
    extra: Option<&ExtraRoutes>,
) -> std::io::Result<()> {
    let Some((mut stream, request)) = read_head(stream).await? else { return Ok(()) };
    if !request.path.starts_with("/seda-chain/") {
        let (status, body) = match extra.and_then(|routes| routes(chain, &request)) {
            Some(answer) => answer,
            None => not_implemented(),
        };
        return respond(&mut stream, &status_line(status), &[], body.to_string().as_bytes()).await;
    }
    let (delay, status, body) = {
        let mut state = chain.state.lock().expect("the SEDA chain's state");
        let (status, body) = state.answer(&request);
        let faults = &mut state.faults;
        let (status, body) = match faults.fail {
            Some((k, failure)) if k > 0 => {
                faults.fail = Some((k - 1, failure));
                (failure, injected_failure(failure).to_string().into_bytes())
            }
            _ if faults.malformed > 0 => {
                faults.malformed -= 1;
                let full = body.to_string().into_bytes();
                (200, full[..full.len() / 2].to_vec())
            }
            _ => (status, body.to_string().into_bytes()),
        };
        (faults.delay, status, body)
    };
    tokio::time::sleep(delay).await;
    respond(&mut stream, &status_line(status), &[], &body).await
}

/// Reads one request (`http::read_request_with_line`) and parses its line: method, path, query.
/// `None` when the client left.
async fn read_head(stream: TcpStream) -> std::io::Result<Option<(TcpStream, Request)>> {
    let Some((stream, line, _body)) = read_request_with_line(stream).await? else { return Ok(None) };
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default();
    let url = url::Url::parse(&format!("http://seda{target}"))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{target}: {e}")))?;
    let query = url.query_pairs().into_owned().collect();
    Ok(Some((stream, Request { method, path: url.path().to_string(), query })))
}
