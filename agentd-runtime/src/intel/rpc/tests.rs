use super::*;
use crate::intel::ChatMessage;
use serde_json::json;
use std::io::Cursor;

fn req() -> ChatRequest {
    ChatRequest {
        model: "fast".into(),
        messages: vec![ChatMessage::user("hello")],
        max_tokens: Some(1024),
        temperature: None,
    }
}

fn err_text(r: Result<ChatReply, Error>) -> String {
    r.err().map(|e| e.to_string()).unwrap_or_default()
}

#[test]
fn request_envelope_is_the_dialect_wire_format() {
    let bytes = encode_request(7, &req()).unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        r#"{"jsonrpc":"2.0","id":7,"method":"complete","params":{"model":"fast","messages":[{"role":"user","content":"hello"}],"max_tokens":1024}}"#
    );
}

#[test]
fn responses_decode_with_optional_usage() {
    let ok = decode_response(
        br#"{"jsonrpc":"2.0","id":1,"result":{"content":"hi","usage":{"prompt_tokens":3,"completion_tokens":4}}}"#,
    );
    assert_eq!(
        ok.ok(),
        Some(ChatReply {
            content: "hi".into(),
            prompt_tokens: 3,
            completion_tokens: 4
        })
    );
    let no_usage = decode_response(br#"{"jsonrpc":"2.0","id":1,"result":{"content":"x"}}"#);
    assert_eq!(no_usage.ok().map(|r| r.total_tokens()), Some(0));
}

#[test]
fn error_replies_and_garbage_are_clear_errors() {
    assert_eq!(
        err_text(decode_response(
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"overloaded"}}"#
        )),
        "intelligence call failed: backend error -32000: overloaded"
    );
    assert_eq!(
        err_text(decode_response(br#"{"jsonrpc":"2.0","id":1}"#)),
        "intelligence call failed: backend reply contained neither `result` nor `error`"
    );
    assert!(
        err_text(decode_response(br#"{"result":{"content":5}}"#)).contains("no string `content`")
    );
    assert!(err_text(decode_response(b"\xff\xfe\x00garbage")).contains("not valid JSON"));
    let deep = "[".repeat(10_000);
    assert!(err_text(decode_response(deep.as_bytes())).contains("not valid JSON"));
}

#[test]
fn frames_round_trip() {
    let mut buf = Vec::new();
    assert!(write_frame(&mut buf, b"{\"a\":1}").is_ok());
    assert_eq!(&buf[..4], &7_u32.to_le_bytes());
    let back = read_frame(&mut Cursor::new(buf)).ok();
    assert_eq!(back.as_deref(), Some(&b"{\"a\":1}"[..]));
}

#[test]
fn oversized_frames_are_rejected_both_ways() {
    // Reading: the length alone is refused; nothing is allocated for it.
    let mut hdr = Cursor::new(((MAX_FRAME as u32) + 1).to_le_bytes().to_vec());
    let e = read_frame(&mut hdr).err();
    assert_eq!(
        e.as_ref().map(io::Error::kind),
        Some(io::ErrorKind::InvalidData)
    );
    assert!(e.is_some_and(|e| e.to_string().contains("exceeds")));
    let mut max = Cursor::new(u32::MAX.to_le_bytes().to_vec());
    assert!(read_frame(&mut max).is_err());
    // Writing.
    let big = vec![b' '; MAX_FRAME + 1];
    let mut sink = Vec::new();
    let e = write_frame(&mut sink, &big).err();
    assert_eq!(e.map(|e| e.kind()), Some(io::ErrorKind::InvalidInput));
    assert!(sink.is_empty());
}

#[test]
fn truncated_frames_are_errors() {
    let mut short_len = Cursor::new(vec![1_u8, 0]);
    let e = read_frame(&mut short_len).err().map(|e| e.to_string());
    assert_eq!(e.as_deref(), Some("connection closed before a reply frame"));
    let mut data = 10_u32.to_le_bytes().to_vec();
    data.extend_from_slice(b"abc");
    let e = read_frame(&mut Cursor::new(data))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some("truncated frame: expected 10 bytes, got 3")
    );
}

#[test]
fn garbage_frames_never_panic() {
    let mut seed = 0x1234_5678_u64;
    for _ in 0..500 {
        let mut bytes = Vec::new();
        let len = (seed % 64) as usize;
        for _ in 0..len {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            bytes.push((seed >> 33) as u8);
        }
        if let Ok(frame) = read_frame(&mut Cursor::new(bytes)) {
            let _ = decode_response(&frame);
        }
        seed = seed.wrapping_add(0x9E37_79B9);
    }
}

#[cfg(unix)]
mod unix {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn socket_path(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("agentd-rpc-{tag}-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let p = dir.join("intel.sock");
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn unix_backend_speaks_framed_json_rpc() {
        let path = socket_path("ok");
        let listener = UnixListener::bind(&path).expect("bind");
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..2 {
                let (mut s, _) = listener.accept().expect("accept");
                let frame = read_frame(&mut s).unwrap_or_default();
                let v: Value = serde_json::from_slice(&frame).unwrap_or_default();
                let reply = json!({"jsonrpc": "2.0", "id": v["id"], "result": {
                    "content": format!("echo {}", v["params"]["messages"][0]["content"].as_str().unwrap_or("")),
                    "usage": {"prompt_tokens": 2, "completion_tokens": 3}}});
                let _ = write_frame(&mut s, reply.to_string().as_bytes());
                seen.push(v);
            }
            seen
        });
        let b = UnixBackend::new(&path, Duration::from_secs(5));
        let first = b.complete(&req());
        let second = b.complete(&req());
        let seen = server.join().unwrap_or_default();
        assert_eq!(
            first.ok().map(|r| (r.total_tokens(), r.content)),
            Some((5, "echo hello".into()))
        );
        assert!(second.is_ok());
        // A new connection per call; ids count from 1.
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0]["id"], json!(1));
        assert_eq!(seen[1]["id"], json!(2));
        assert_eq!(seen[0]["method"], json!("complete"));
        assert_eq!(seen[0]["params"]["max_tokens"], json!(1024));
    }

    #[test]
    fn unix_backend_reports_oversized_and_dead_servers() {
        let path = socket_path("big");
        let listener = UnixListener::bind(&path).expect("bind");
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let _ = read_frame(&mut s);
            let _ = s.write_all(&u32::MAX.to_le_bytes());
            let (mut s, _) = listener.accept().expect("accept");
            let _ = read_frame(&mut s);
            // Close without answering.
        });
        let b = UnixBackend::new(&path, Duration::from_secs(5));
        let big = err_text(b.complete(&req()));
        let closed = err_text(b.complete(&req()));
        let _ = server.join();
        assert!(big.contains("exceeds the 16777216-byte cap"), "{big}");
        assert!(
            closed.contains("connection closed before a reply frame"),
            "{closed}"
        );
        let missing = UnixBackend::new(socket_path("missing"), Duration::from_secs(1));
        assert!(
            err_text(missing.complete(&req())).contains("cannot connect to intelligence socket")
        );
    }

    #[test]
    fn unix_backend_times_out_on_a_silent_server() {
        let path = socket_path("slow");
        let listener = UnixListener::bind(&path).expect("bind");
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().expect("accept");
            std::thread::sleep(Duration::from_millis(1500));
            drop(s);
        });
        let b = UnixBackend::new(&path, Duration::from_millis(200));
        let started = std::time::Instant::now();
        let e = err_text(b.complete(&req()));
        assert!(started.elapsed() < Duration::from_millis(1400));
        let _ = server.join();
        assert!(e.ends_with("timed out"), "{e}");
    }
}

mod http {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn urls_must_be_plain_http() {
        assert_eq!(
            parse_http_url("http://127.0.0.1:8080/rpc"),
            Ok(("127.0.0.1".into(), 8080, "/rpc".into()))
        );
        assert_eq!(
            parse_http_url("http://intel"),
            Ok(("intel".into(), 80, "/".into()))
        );
        assert_eq!(
            parse_http_url("http://[::1]:9/x"),
            Ok(("::1".into(), 9, "/x".into()))
        );
        assert!(parse_http_url("https://x/").is_err_and(|e| e.contains("https is not supported")));
        assert!(parse_http_url("ftp://x/").is_err());
        assert!(parse_http_url("http://:80/").is_err());
        assert!(parse_http_url("http://h:99999/").is_err());
    }

    #[test]
    fn http_backend_posts_the_envelope_with_bearer() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut buf = Vec::new();
            let mut chunk = [0_u8; 4096];
            // Read until the body (Content-Length) is complete.
            loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        break;
                    }
                }
            }
            let body = r#"{"jsonrpc":"2.0","id":1,"result":{"content":"pong","usage":{"prompt_tokens":1,"completion_tokens":1}}}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes());
            String::from_utf8_lossy(&buf).into_owned()
        });
        let b = HttpBackend::new(
            &format!("http://127.0.0.1:{port}/v1/intel"),
            Some("tok".into()),
            Duration::from_secs(5),
        )
        .expect("url");
        let reply = b.complete(&req());
        let seen = server.join().unwrap_or_default();
        assert_eq!(reply.ok().map(|r| r.content).as_deref(), Some("pong"));
        assert!(seen.starts_with("POST /v1/intel HTTP/1.1\r\n"), "{seen}");
        for h in [
            format!("Host: 127.0.0.1:{port}\r\n"),
            "Connection: close\r\n".into(),
            "Content-Type: application/json\r\n".into(),
            "Authorization: Bearer tok\r\n".into(),
        ] {
            assert!(seen.contains(&h), "missing {h:?} in {seen}");
        }
        assert!(seen.ends_with(r#""max_tokens":1024}}"#), "{seen}");
    }

    #[test]
    fn http_replies_are_bounded_and_checked() {
        let parse = |raw: &str, cap| read_http_response(Cursor::new(raw.as_bytes().to_vec()), cap);
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 10).ok(),
            Some((200, b"ok".to_vec()))
        );
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n", 10).ok(),
            Some((200, b"abc".to_vec()))
        );
        assert_eq!(
            parse("HTTP/1.0 204 No\r\n\r\n", 10).ok(),
            Some((204, Vec::new()))
        );
        let too_big = parse("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", 10);
        assert!(too_big.is_err_and(|e| e.to_string().contains("exceeds the 10-byte cap")));
        let endless = format!("HTTP/1.1 200 OK\r\n\r\n{}", "x".repeat(50));
        assert!(parse(&endless, 10).is_err());
        let truncated = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 10);
        assert!(truncated.is_err_and(|e| e.to_string().contains("truncated")));
        assert!(parse("garbage\r\n\r\n", 10).is_err());
        assert!(parse("HTTP/1.1 200 OK\r\nno-colon\r\n\r\n", 10).is_err());
        let huge_head = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(70_000));
        assert!(parse(&huge_head, 10).is_err_and(|e| e.to_string().contains("head exceeds")));
    }
}

/// A backend that sends one byte of its reply just before each read timeout
/// would keep a call going for as long as it likes; the call's whole timeout
/// bounds it instead.
#[test]
fn a_backend_trickling_its_reply_cannot_outlast_the_call_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0_u8; 4096];
        let _ = s.read(&mut buf);
        // A status line that never ends: one byte every 100 ms.
        for b in b"HTTP/1.1 200 OK\r\nX-Slow: "
            .iter()
            .chain(std::iter::repeat(&b'a'))
        {
            if s.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let backend = HttpBackend::new(
        &format!("http://127.0.0.1:{port}/rpc"),
        None,
        Duration::from_millis(800),
    )
    .expect("backend");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(err_text(backend.complete(&req())));
    });
    // Generous: only a call that ignores its deadline takes this long.
    let text = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the call ended within its timeout");
    assert!(text.contains("timed out"), "{text}");
}
