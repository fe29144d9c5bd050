//! Fetching one user-data URL by scheme: `http`/`https` through the retrying client, `data:`
//! (RFC 2397) decoded in place, `tftp` (RFC 1350, octet mode) for PXE setups, and `file` for
//! NoCloud seeds on a local path.

use std::net::{ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use super::{read_local, Env, Error, Result};

/// Fetches `url`: `Ok(None)` when the server says the file does not exist (HTTP 404, TFTP
/// "file not found", a missing file).
pub fn fetch(env: &Env, url: &str) -> Result<Option<Vec<u8>>> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https") => env.http.get_optional(url, &[]),
        Some("data") => decode_data(url).map(Some),
        Some("tftp") => tftp_get(env, url),
        Some("file") => read_file(env, url),
        _ => Err(Error::UnsupportedScheme { url: redact(url) }),
    }
}

pub use kiln_core::url::redact;

/// The part of `url` after `scheme://`; a clear error naming the expected `form` without it.
fn after_scheme<'a>(url: &'a str, form: &str) -> Result<&'a str> {
    url.split_once("://")
        .map(|(_, rest)| rest)
        .ok_or_else(|| Error::BadUrl {
            url: redact(url),
            reason: format!("expected {form}"),
        })
}

/// Checks the scheme of `url` without fetching it.
pub fn check_scheme(url: &str) -> Result<()> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https" | "data" | "tftp" | "file") => Ok(()),
        _ => Err(Error::UnsupportedScheme { url: redact(url) }),
    }
}

/// Decodes `data:[<mediatype>][;base64],<data>` (RFC 2397, with the `data-url` crate).
fn decode_data(url: &str) -> Result<Vec<u8>> {
    let bad = |reason: String| Error::BadUrl {
        url: "data:...".into(),
        reason,
    };
    let parsed = data_url::DataUrl::process(url).map_err(|e| bad(format!("malformed ({e:?})")))?;
    let (body, _) = parsed
        .decode_to_vec()
        .map_err(|_| bad("bad base64".into()))?;
    Ok(body)
}

/// `file:///path` read below the sys-root.
fn read_file(env: &Env, url: &str) -> Result<Option<Vec<u8>>> {
    let path = after_scheme(url, "file:///path")?;
    read_local(env, path, env.http.config().max_body)
}

/// Reads `tftp://host[:port]/file`, resending the request until the deadline if no packet comes.
fn tftp_get(env: &Env, url: &str) -> Result<Option<Vec<u8>>> {
    let bad = |reason: &str| Error::BadUrl {
        url: redact(url),
        reason: reason.into(),
    };
    let rest = after_scheme(url, "tftp://host[:port]/file")?;
    let (authority, file) = rest.split_once('/').ok_or_else(|| bad("no file path"))?;
    let authority = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:69")
    };
    let server = authority
        .to_socket_addrs()
        .map_err(|e| bad(&e.to_string()))?
        .next()
        .ok_or_else(|| bad("host has no address"))?;
    let limits = *env.http.config();
    let io = |e: std::io::Error| Error::GaveUp {
        url: redact(url),
        attempts: 1,
        last: e.to_string(),
    };
    let socket = UdpSocket::bind(if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })
    .map_err(io)?;
    let mut request = vec![0, 1];
    request.extend_from_slice(file.as_bytes());
    request.extend_from_slice(b"\0octet\0");
    let mut transfer = Tftp {
        socket,
        url,
        data: Vec::new(),
        block: 0,
        peer: None,
        max: limits.max_body,
    };
    transfer.run(&request, server, limits.deadline, limits.request_timeout)
}

/// One TFTP read transfer.
struct Tftp<'a> {
    socket: UdpSocket,
    url: &'a str,
    data: Vec<u8>,
    block: u16,
    peer: Option<std::net::SocketAddr>,
    max: u64,
}

/// What a received packet means for the transfer.
enum Next {
    /// Not ours, or not the block we wait for: keep waiting.
    Wait,
    /// A data block was taken: acknowledge it; `last` when it ends the file.
    Ack { packet: Vec<u8>, last: bool },
    /// The server has no such file.
    NotFound,
}

impl Tftp<'_> {
    fn run(
        &mut self,
        request: &[u8],
        server: std::net::SocketAddr,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>> {
        let mut last = (request.to_vec(), server);
        let mut attempts = 1;
        self.send(&last.0, last.1)?;
        let mut buf = [0u8; 516];
        loop {
            let left = self.time_left(deadline, attempts)?;
            self.socket.set_read_timeout(Some(left.min(timeout))).ok();
            let Ok((n, from)) = self.socket.recv_from(&mut buf) else {
                // No answer in time: send the last packet again (TFTP's own retransmission).
                attempts += 1;
                self.send(&last.0, last.1)?;
                continue;
            };
            match self.receive(&buf[..n], from)? {
                Next::Wait => {}
                Next::NotFound => return Ok(None),
                Next::Ack { packet, last: end } => {
                    self.send(&packet, from)?;
                    if end {
                        return Ok(Some(std::mem::take(&mut self.data)));
                    }
                    last = (packet, from);
                }
            }
        }
    }

    /// Time left before `deadline`, or the error that the server never answered.
    fn time_left(&self, deadline: Instant, attempts: u32) -> Result<Duration> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::GaveUp {
                url: redact(self.url),
                attempts,
                last: "no TFTP answer".into(),
            });
        }
        Ok(left)
    }

    /// Takes one packet from `from`: the next data block, an error, or something to ignore.
    fn receive(&mut self, packet: &[u8], from: std::net::SocketAddr) -> Result<Next> {
        if self.peer.is_some_and(|p| p != from) || packet.len() < 4 {
            return Ok(Next::Wait);
        }
        match (packet[1], u16::from_be_bytes([packet[2], packet[3]])) {
            (3, block) if block == self.block.wrapping_add(1) => {
                self.peer = Some(from);
                self.block = block;
                self.data.extend_from_slice(&packet[4..]);
                if self.data.len() as u64 > self.max {
                    return Err(Error::TooLarge {
                        source_name: redact(self.url),
                        limit: self.max,
                    });
                }
                let ack = vec![0, 4, packet[2], packet[3]];
                Ok(Next::Ack {
                    packet: ack,
                    last: packet.len() < 516,
                })
            }
            (5, 1) => Ok(Next::NotFound),
            (5, code) => {
                let msg = String::from_utf8_lossy(&packet[4..])
                    .trim_end_matches('\0')
                    .to_owned();
                Err(Error::Missing(format!(
                    "{}: TFTP error {code}: {msg}",
                    redact(self.url)
                )))
            }
            _ => Ok(Next::Wait),
        }
    }

    fn send(&self, packet: &[u8], to: std::net::SocketAddr) -> Result<()> {
        self.socket
            .send_to(packet, to)
            .map(drop)
            .map_err(|e| Error::GaveUp {
                url: redact(self.url),
                attempts: 1,
                last: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasource::test_env;

    #[test]
    fn data_urls_plain_and_base64() {
        assert_eq!(decode_data("data:,hello%20world").unwrap(), b"hello world");
        assert_eq!(decode_data("data:text/plain;base64,aGk=").unwrap(), b"hi");
        assert!(decode_data("data:text/plain").is_err());
        assert!(decode_data("data:;base64,***").is_err());
    }

    #[test]
    fn unsupported_scheme_is_named() {
        let err = check_scheme("gopher://x/y").unwrap_err();
        assert!(err.to_string().contains("gopher://x/y"), "{err}");
        check_scheme("tftp://10.0.0.1/boot/user-data").unwrap();
    }

    #[test]
    fn redact_drops_userinfo_query_and_fragment() {
        for (url, want) in [
            (
                "https://user:pa55@example.com:8443/a/b?X-Amz-Signature=abc#frag",
                "https://example.com:8443/a/b",
            ),
            ("http://10.0.0.1/ud?token=t", "http://10.0.0.1/ud"),
            ("http://u@h", "http://h"),
            ("tftp://10.0.0.1/node.yaml", "tftp://10.0.0.1/node.yaml"),
            ("data:;base64,c2VjcmV0", "data:..."),
            (
                "/dev/sr0:openstack/latest/meta_data.json",
                "/dev/sr0:openstack/latest/meta_data.json",
            ),
        ] {
            assert_eq!(redact(url), want, "{url}");
        }
        let err = check_scheme("gopher://me:pa55@x/y?k=s3cret").unwrap_err();
        assert!(
            !err.to_string().contains("pa55") && !err.to_string().contains("s3cret"),
            "{err}"
        );
    }

    #[test]
    fn malformed_tftp_and_file_urls_are_errors() {
        let (env, _dir) = test_env(1.0);
        for url in ["tftp:/é/x", "TFTP:é", "tftp://é", "file:/etc/x"] {
            let err = fetch(&env, url).unwrap_err();
            assert!(matches!(err, Error::BadUrl { .. }), "{url}: {err}");
        }
        let err = fetch(&env, "tftp:/é/x").unwrap_err().to_string();
        assert!(err.contains("expected tftp://host[:port]/file"), "{err}");
    }

    #[test]
    fn local_files_must_be_regular_and_within_the_cap() {
        let (env, dir) = test_env(1.0);
        std::fs::create_dir(dir.path().join("dev")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("dev/zero")).unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        // Sparse: over the 1 MiB cap without taking space.
        let big = std::fs::File::create(dir.path().join("big")).unwrap();
        big.set_len(1 << 30).unwrap();
        let err = fetch(&env, "file:///fifo").unwrap_err().to_string();
        assert!(err.contains("not a regular file (a FIFO)"), "{err}");
        // Inside the sys-root, /dev/zero is the link itself: a loop, never the host's device.
        let err = fetch(&env, "file:///dev/zero").unwrap_err().to_string();
        assert!(err.contains("symbolic links"), "{err}");
        let err = fetch(&env, "file:///big").unwrap_err().to_string();
        assert!(err.contains("larger than the limit of 1048576"), "{err}");
        assert!(fetch(&env, "file:///missing").unwrap().is_none());
    }

    #[test]
    fn file_urls_never_leave_the_sys_root() {
        let (env, dir) = test_env(1.0);
        let host = tempfile::tempdir().unwrap();
        let secret = host.path().join("secret");
        std::fs::write(&secret, "host secret").unwrap();
        std::os::unix::fs::symlink(&secret, dir.path().join("abs")).unwrap();
        let up = format!("../../../../../../..{}", secret.display());
        std::os::unix::fs::symlink(up, dir.path().join("rel")).unwrap();
        for url in [
            "file:///abs",
            "file:///rel",
            "file:///../../../../../../etc/hostname",
        ] {
            assert!(fetch(&env, url).unwrap().is_none(), "{url}");
        }
        std::fs::write(dir.path().join("seed"), "inside").unwrap();
        std::os::unix::fs::symlink("/seed", dir.path().join("link")).unwrap();
        assert_eq!(fetch(&env, "file:///link").unwrap().unwrap(), b"inside");
    }

    /// A one-file TFTP server on 127.0.0.1 that answers one read request.
    fn tftp_server(contents: Vec<u8>) -> u16 {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut buf = [0u8; 600];
            let (n, client) = sock.recv_from(&mut buf).unwrap();
            let name = String::from_utf8_lossy(&buf[2..n]).to_string();
            let data = UdpSocket::bind("127.0.0.1:0").unwrap();
            if !name.starts_with("user-data\0") {
                data.send_to(b"\0\x05\0\x01not found\0", client).unwrap();
                return;
            }
            let mut chunks: Vec<&[u8]> = contents.chunks(512).collect();
            if contents.len().is_multiple_of(512) {
                chunks.push(&[]);
            }
            for (i, chunk) in chunks.iter().enumerate() {
                let block = (i as u16 + 1).to_be_bytes();
                let mut pkt = vec![0, 3, block[0], block[1]];
                pkt.extend_from_slice(chunk);
                data.send_to(&pkt, client).unwrap();
                data.recv_from(&mut buf).unwrap();
            }
        });
        port
    }

    #[test]
    fn tftp_reads_multi_block_files_and_reports_missing_ones() {
        let contents: Vec<u8> = (0..1300u32).map(|i| i as u8).collect();
        let port = tftp_server(contents.clone());
        let (env, _dir) = test_env(5.0);
        let got = fetch(&env, &format!("tftp://127.0.0.1:{port}/user-data")).unwrap();
        assert_eq!(got.unwrap(), contents);
        let port = tftp_server(Vec::new());
        assert!(fetch(&env, &format!("tftp://127.0.0.1:{port}/nothing"))
            .unwrap()
            .is_none());
    }
}
