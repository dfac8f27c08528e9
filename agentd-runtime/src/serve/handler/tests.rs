use super::*;

fn map(pairs: &[(&str, &[u8])]) -> hyper::HeaderMap {
    let mut headers = hyper::HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            hyper::header::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_bytes(value).expect("a header value"),
        );
    }
    headers
}

/// What the five lookups the scan replaces read, one `get` per header.
fn by_lookup(headers: &hyper::HeaderMap) -> (Option<u64>, Option<&str>, Option<&str>) {
    (
        headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok()),
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        headers.get("traceparent").and_then(|v| v.to_str().ok()),
    )
}

#[test]
fn one_scan_reads_the_first_value_of_each_header_as_a_lookup_does() {
    let cases: Vec<hyper::HeaderMap> = vec![
        map(&[]),
        map(&[
            ("content-length", b"12"),
            ("content-type", b"application/json"),
        ]),
        map(&[("Content-Length", b" 7 "), ("TraceParent", b"00-abc")]),
        // Repeated headers: the first value decides, even an unreadable one.
        map(&[
            ("content-type", b"caf\xc3\xa9"),
            ("content-type", b"text/plain"),
        ]),
        map(&[("content-length", b"x"), ("content-length", b"5")]),
        map(&[("traceparent", b"first"), ("traceparent", b"second")]),
        // Authorization: one, one among others, repeated, unreadable.
        map(&[("Authorization", b"Bearer a")]),
        map(&[
            ("host", b"h"),
            ("authorization", b"Bearer a"),
            ("content-length", b"3"),
        ]),
        map(&[
            ("authorization", b"Bearer a"),
            ("x-other", b"1"),
            ("AUTHORIZATION", b"Bearer b"),
        ]),
        map(&[("authorization", b"Bearer \xff")]),
        map(&[
            ("x-other", b"1"),
            ("traceparentx", b"not it"),
            ("content-type", b"text/plain"),
            ("content-length", b"0"),
        ]),
    ];
    for headers in &cases {
        let head = HeadFacts::scan(headers);
        assert_eq!(
            (head.content_length, head.content_type, head.traceparent),
            by_lookup(headers),
            "{headers:?}"
        );
        assert_eq!(
            head.authorization,
            auth::FoundHeader::lookup(headers),
            "{headers:?}"
        );
        assert!(head.refusal().is_none(), "{headers:?}");
    }
}

#[test]
fn the_scan_refuses_codings_it_does_not_undo_transfer_first() {
    let status = |pairs: &[(&str, &[u8])]| {
        let headers = map(pairs);
        HeadFacts::scan(&headers)
            .refusal()
            .map(|r| r.status().as_u16())
    };
    assert_eq!(status(&[("transfer-encoding", b"chunked")]), None);
    assert_eq!(status(&[("transfer-encoding", b"Chunked, ,")]), None);
    assert_eq!(status(&[("content-encoding", b"identity")]), None);
    assert_eq!(
        status(&[("transfer-encoding", b"gzip, chunked")]),
        Some(501)
    );
    assert_eq!(status(&[("content-encoding", b"gzip")]), Some(415));
    assert_eq!(status(&[("content-encoding", b"\xff")]), Some(415));
    // A bad coding in a later value of the header is still found.
    assert_eq!(
        status(&[
            ("content-encoding", b"identity"),
            ("content-encoding", b"br")
        ]),
        Some(415)
    );
    // Both wrong: the transfer coding is judged first, wherever it comes.
    assert_eq!(
        status(&[("content-encoding", b"br"), ("transfer-encoding", b"gzip")]),
        Some(501)
    );
    let headers = map(&[
        ("transfer-encoding", b"chunked"),
        ("transfer-encoding", b"deflate"),
    ]);
    let head = HeadFacts::scan(&headers);
    assert_eq!(head.bad_transfer, Some("deflate"));
    let headers = map(&[("content-encoding", b"\xff")]);
    assert_eq!(HeadFacts::scan(&headers).bad_content, Some("?"));
}

#[test]
fn a_reply_body_is_sent_whole_in_bounded_frames_with_its_exact_length() {
    use hyper::body::Body as _;
    let runtime = crate::serve::test_runtime();
    for len in [
        0,
        1,
        REPLY_FRAME - 1,
        REPLY_FRAME,
        REPLY_FRAME + 1,
        5 * REPLY_FRAME + 7,
    ] {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut body = ReplyBody::new(data.clone());
        assert_eq!(body.size_hint().exact(), Some(len as u64));
        assert_eq!(body.is_end_stream(), len == 0);
        let (frames, got) = runtime.block_on(async {
            let mut frames = Vec::new();
            let mut got = Vec::new();
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame;
                let Ok(data) = frame.into_data() else {
                    panic!("a frame that is not data");
                };
                frames.push(data.len());
                got.extend_from_slice(&data);
            }
            (frames, got)
        });
        assert_eq!(got, data, "len {len}");
        assert!(
            frames.iter().all(|&n| n > 0 && n <= REPLY_FRAME),
            "{frames:?}"
        );
        assert_eq!(frames.len(), len.div_ceil(REPLY_FRAME), "{frames:?}");
        assert!(body.is_end_stream());
    }
}

#[test]
fn a_static_content_type_is_the_value_a_copy_of_it_would_be() {
    // Leaked: `static_type` takes content types that live for the process.
    let leak = |bytes: &[u8]| -> &'static str {
        let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
        Box::leak(text.into_boxed_str())
    };
    let cases: Vec<&'static str> = vec![
        JSON,
        "text/plain",
        "text/plain; charset=utf-8",
        "text/html",
        "text/html; charset=utf-8",
        "text/xml",
        "application/problem+json",
        "text/csv;\theader=present",
        // Known types, spelled out at run time (not the literals above).
        leak(b"application/json"),
        leak(b"text/plain"),
        // Valid for a header value though not visible ASCII.
        leak("text/plain; name=caf\u{e9}".as_bytes()),
        // Invalid: a control character, DEL, a line break.
        leak(b"text/plain\x01"),
        leak(b"text/plain\x7f"),
        leak(b"text/plain\r\nx-injected: 1"),
        "",
    ];
    for content_type in cases {
        let copied = HeaderValue::from_str(content_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
        let value = static_type(content_type);
        assert_eq!(value.as_bytes(), copied.as_bytes(), "{content_type:?}");
        assert!(!value.is_sensitive());
        let reply = static_reply(
            StatusCode::OK,
            content_type,
            String::new(),
            HeaderMap::new(),
        );
        assert_eq!(reply.headers().get(header::CONTENT_TYPE), Some(&copied));
    }
}

#[test]
fn a_reply_carries_only_its_own_headers_in_the_request_map() {
    let request = map(&[
        ("authorization", b"Bearer secret"),
        ("content-type", b"application/json"),
        ("x-custom", b"1"),
        ("x-custom", b"2"),
        ("host", b"example"),
    ]);
    let reply = static_reply(
        StatusCode::CREATED,
        "text/plain",
        "hi".to_owned(),
        reply_headers(request),
    );
    assert_eq!(reply.status(), StatusCode::CREATED);
    let headers: Vec<_> = reply.headers().iter().collect();
    assert_eq!(
        headers,
        vec![(
            &header::CONTENT_TYPE,
            &HeaderValue::from_static("text/plain")
        )]
    );
}

#[test]
fn only_a_small_request_map_is_kept_for_the_reply() {
    let small = map(&[("host", b"example"), ("accept", b"*/*")]);
    let capacity = small.capacity();
    let kept = reply_headers(small);
    assert!(kept.is_empty());
    assert_eq!(kept.capacity(), capacity, "the allocation is kept");

    // Many names: the map grew past the bound and is not kept.
    let names: Vec<String> = (0..=REUSED_HEADERS_MAX)
        .map(|i| format!("x-h{i}"))
        .collect();
    let pairs: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"v"[..])).collect();
    let wide = map(&pairs);
    assert!(wide.capacity() > REUSED_HEADERS_MAX);
    let fresh = reply_headers(wide);
    assert!(fresh.is_empty());
    assert_eq!(fresh.capacity(), 0, "a fresh map, nothing allocated");

    // One name repeated: few keys, many values (held apart from the table).
    let repeated: Vec<(&str, &[u8])> = (0..=REUSED_HEADERS_MAX)
        .map(|_| ("x-r", &b"v"[..]))
        .collect();
    let long = map(&repeated);
    assert!(long.capacity() <= REUSED_HEADERS_MAX);
    let fresh = reply_headers(long);
    assert_eq!(fresh.capacity(), 0, "a fresh map, nothing allocated");
}

#[test]
fn tmp_future_sizes() {
    fn size5<A, B, C, D, E, F>(_: impl FnOnce(A, B, C, D, E) -> F) -> usize {
        std::mem::size_of::<F>()
    }
    fn size3<A, B, C, F>(_: impl FnOnce(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }
    fn size4<A, B, C, D, F>(_: impl FnOnce(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }
    fn size8<A, B, C, D, E, G, H, I, F>(_: impl FnOnce(A, B, C, D, E, G, H, I) -> F) -> usize {
        std::mem::size_of::<F>()
    }
    eprintln!(
        "route_request {}",
        size5::<
            &'static Arc<State>,
            usize,
            &'static RouteDef,
            Request<Incoming>,
            Option<Arc<PeerIdentity>>,
            _,
        >(route_request)
    );
    eprintln!(
        "handle {}",
        size3::<Arc<State>, Request<Incoming>, Option<Arc<PeerIdentity>>, _>(handle)
    );
    eprintln!(
        "pipeline {}",
        size4::<
            &'static Arc<State>,
            Request<Incoming>,
            Option<Arc<PeerIdentity>>,
            &'static AtomicUsize,
            _,
        >(pipeline)
    );
    eprintln!(
        "read_body {}",
        size3::<Incoming, Option<u64>, std::time::Duration, _>(read_body)
    );
    eprintln!(
        "pooled {}",
        size8::<
            &'static Arc<State>,
            &'static RouteDef,
            Trigger,
            Option<Cow<'static, Value>>,
            Option<(String, u64)>,
            Option<TraceParent>,
            Option<tokio::sync::OwnedSemaphorePermit>,
            HeaderMap,
            _,
        >(pooled)
    );
}
