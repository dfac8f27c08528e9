use super::*;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn req<'a>(auth: ClientAuth, extra: &'a [(&'a str, &'a str)]) -> ClientCredentials<'a> {
    ClientCredentials {
        token_url: "http://127.0.0.1:1/token",
        client_id: "my client",
        client_secret: "s3cr&t",
        auth,
        scope: Some("read write"),
        extra,
    }
}

#[test]
fn the_post_body_carries_the_client_and_sorted_extra_params() {
    let extra = [("resource", "https://api"), ("audience", "x y")];
    assert_eq!(
        form_body(&req(ClientAuth::Post, &extra)),
        "grant_type=client_credentials&client_id=my+client&client_secret=s3cr%26t\
         &scope=read+write&audience=x+y&resource=https%3A%2F%2Fapi"
    );
}

#[test]
fn basic_auth_form_encodes_id_and_secret_before_base64() {
    assert_eq!(
        form_body(&req(ClientAuth::Basic, &[])),
        "grant_type=client_credentials&scope=read+write"
    );
    use base64::Engine as _;
    let header = basic_header("my client", "s3cr&t");
    let decoded = header
        .strip_prefix("Basic ")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    assert_eq!(decoded.as_deref(), Some("my+client:s3cr%26t"));
}

#[test]
fn debug_never_shows_the_secret_or_the_token() {
    let r = req(ClientAuth::Basic, &[]);
    assert!(!format!("{r:?}").contains("s3cr"), "{r:?}");
    let t = AccessToken {
        value: "tok-canary".to_owned(),
        expires_in: Some(5),
    };
    assert!(!format!("{t:?}").contains("canary"), "{t:?}");
}

fn parse(status: u16, body: &str) -> Result<AccessToken, String> {
    parse_reply("http://as/token", status, body.as_bytes()).map_err(|e| e.to_string())
}

#[test]
fn a_token_reply_is_read_with_its_lifetime() {
    let t = parse(
        200,
        r#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#,
    );
    assert_eq!(
        t.as_ref().map(|t| (t.expose().to_owned(), t.expires_in)),
        Ok(("abc".to_owned(), Some(3600)))
    );
    let t = parse(200, r#"{"access_token":"abc","expires_in":"60"}"#);
    assert_eq!(t.map(|t| t.lifetime_secs()), Ok(60));
    let t = parse(200, r#"{"access_token":"abc","token_type":"bearer"}"#);
    assert_eq!(t.map(|t| t.lifetime_secs()), Ok(DEFAULT_EXPIRES_IN));
}

#[test]
fn unusable_replies_are_clear_errors_that_never_quote_a_token() {
    assert_eq!(
        parse(200, "<html>oops</html>").err().as_deref(),
        Some(
            "token endpoint `http://as/token` sent an unusable reply: not JSON: `<html>oops</html>`"
        )
    );
    assert_eq!(
        parse(200, r#"{"id_token":"SECRETISH","token_type":"Bearer"}"#)
            .err()
            .as_deref(),
        Some(
            "token endpoint `http://as/token` sent an unusable reply: no `access_token` string in the reply (keys: id_token, token_type)"
        )
    );
    assert_eq!(
        parse(200, r#"{"access_token":"abc","token_type":"mac"}"#)
            .err()
            .as_deref(),
        Some(
            "token endpoint `http://as/token` sent an unusable reply: `token_type` is \"mac\", and only bearer tokens are supported"
        )
    );
    assert_eq!(
        parse(200, r#"{"access_token":"abc","expires_in":"soon"}"#)
            .err()
            .as_deref(),
        Some(
            "token endpoint `http://as/token` sent an unusable reply: `expires_in` is \"soon\", not a number of seconds"
        )
    );
    assert_eq!(
        parse(200, "[1]").err().as_deref(),
        Some(
            "token endpoint `http://as/token` sent an unusable reply: the reply is JSON but not an object"
        )
    );
}

#[test]
fn refusals_show_the_oauth_error_or_a_bounded_excerpt() {
    assert_eq!(
        parse(
            401,
            r#"{"error":"invalid_client","error_description":"bad secret"}"#
        )
        .err()
        .as_deref(),
        Some(
            "token endpoint `http://as/token` refused the request with HTTP 401: invalid_client: bad secret"
        )
    );
    let long = "x".repeat(1000);
    let e = parse(500, &long).err().unwrap_or_default();
    assert!(
        e.ends_with(&format!("HTTP 500: `{}`", "x".repeat(300))),
        "{e}"
    );
    assert_eq!(
        parse(503, "").err().as_deref(),
        Some("token endpoint `http://as/token` refused the request with HTTP 503: (empty body)")
    );
}

#[test]
fn the_cache_reuses_a_fresh_token_and_refetches_after_expiry() {
    let cache = TokenCache::new(Duration::from_secs(0));
    let n = AtomicUsize::new(0);
    let fetch = |life| {
        n.fetch_add(1, Ordering::SeqCst);
        Ok::<_, String>(AccessToken {
            value: format!("t{}", n.load(Ordering::SeqCst)),
            expires_in: Some(life),
        })
    };
    let (a, fresh) = cache
        .get_or_fetch(|| fetch(3600))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(fresh);
    let (b, fresh) = cache
        .get_or_fetch(|| fetch(3600))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!fresh);
    assert_eq!((a.expose(), b.expose()), ("t1", "t1"));
    cache.invalidate();
    let (c, _) = cache
        .get_or_fetch(|| fetch(0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.expose(), "t2");
    // Lifetime 0: already expired, so the next use fetches again.
    let (d, fresh) = cache
        .get_or_fetch(|| fetch(3600))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(fresh);
    assert_eq!(d.expose(), "t3");
}

#[test]
fn the_skew_is_taken_off_the_lifetime() {
    let cache = TokenCache::new(Duration::from_secs(60));
    let token = || {
        Ok::<_, String>(AccessToken {
            value: "t".to_owned(),
            expires_in: Some(30),
        })
    };
    assert_eq!(cache.get_or_fetch(token).map(|r| r.1), Ok(true));
    // 30 s − 60 s skew: stale at once.
    assert_eq!(cache.get_or_fetch(token).map(|r| r.1), Ok(true));
    let cache = TokenCache::new(Duration::from_secs(60));
    let long = || {
        Ok::<_, String>(AccessToken {
            value: "t".to_owned(),
            expires_in: Some(3600),
        })
    };
    assert_eq!(cache.get_or_fetch(long).map(|r| r.1), Ok(true));
    assert_eq!(cache.get_or_fetch(long).map(|r| r.1), Ok(false));
}

/// A token endpoint on 127.0.0.1 answering every request with `reply`,
/// recording each request (head and body).
fn endpoint(reply: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let url = format!(
        "http://{}/oauth/token",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut r = BufReader::new(stream);
            let mut head = String::new();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            head.push_str(&String::from_utf8_lossy(&body));
            if let Ok(mut s) = sink.lock() {
                s.push(head);
            }
            let mut s = r.into_inner();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (url, seen)
}

#[test]
fn a_real_endpoint_receives_basic_auth_and_the_form() {
    let (url, seen) =
        endpoint(r#"{"access_token":"live-tok","token_type":"Bearer","expires_in":120}"#);
    let mut r = req(ClientAuth::Basic, &[("audience", "api")]);
    r.token_url = &url;
    let token = client_credentials(&r, None).map_err(|e| e.to_string());
    assert_eq!(
        token.map(|t| t.expose().to_owned()),
        Ok("live-tok".to_owned())
    );
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(seen.len(), 1);
    let head = seen[0].to_ascii_lowercase();
    assert!(head.starts_with("post /oauth/token "), "{head}");
    assert!(head.contains("authorization: basic "), "{head}");
    assert!(
        head.contains("content-type: application/x-www-form-urlencoded"),
        "{head}"
    );
    assert!(
        seen[0].ends_with("grant_type=client_credentials&scope=read+write&audience=api"),
        "{}",
        seen[0]
    );
}

#[test]
fn the_policy_decides_on_the_token_url_before_anything_is_sent() {
    let (url, seen) = endpoint(r#"{"access_token":"t"}"#);
    let mut r = req(ClientAuth::Post, &[]);
    r.token_url = &url;
    let policy = Policy::default();
    let e = client_credentials(&r, Some(&policy)).map_err(|e| e.to_string());
    assert_eq!(
        e.err(),
        Some(format!(
            "token endpoint `{url}` is not allowed: http_request denied: no `http.urls` allowlist configured"
        ))
    );
    assert_eq!(seen.lock().map(|s| s.len()).unwrap_or(99), 0);
}
