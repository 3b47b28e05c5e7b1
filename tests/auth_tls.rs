//! Authentication and TLS against real servers: a password-protected server, ACL users, and a
//! TLS server with a throwaway CA (verification success, unknown CA, host name mismatch, mTLS).

mod support;

use std::time::Duration;

use redpool::{ErrorKind, Pool, Value, cmd};
use support::{RedisServer, ServerOptions, TlsKind, with_timeout};

const LIMIT: Duration = Duration::from_secs(60);
const PASSWORD: &str = "Corr3ct-Horse-Battery";

fn password_server() -> RedisServer {
    RedisServer::start_with(ServerOptions {
        password: Some(PASSWORD.into()),
        ..Default::default()
    })
}

#[test]
fn password_auth_succeeds_and_wrong_password_is_an_auth_error_without_the_secret() {
    with_timeout(LIMIT, || {
        let server = password_server();
        let good = Pool::from_url(&format!(
            "redis://:{PASSWORD}@127.0.0.1:{}/0",
            server.port()
        ))
        .unwrap();
        assert_eq!(
            good.execute(&cmd("PING")).unwrap(),
            Value::SimpleString("PONG".into())
        );

        let wrong = "Wr0ng-Guess-123";
        let bad =
            Pool::from_url(&format!("redis://:{wrong}@127.0.0.1:{}/0", server.port())).unwrap();
        let err = bad.execute(&cmd("PING")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
        for text in [
            err.to_string(),
            format!("{err:?}"),
            format!("{bad:?}"),
            format!("{:?}", bad.config()),
        ] {
            assert!(!text.contains(wrong), "password leaked: {text}");
            assert!(!text.contains(PASSWORD), "password leaked: {text}");
        }
        assert!(err.to_string().contains("authentication"), "{err}");
        assert_eq!(bad.stats().open, 0, "the failed connection is not kept");

        let missing = Pool::from_url(&format!("redis://127.0.0.1:{}/0", server.port())).unwrap();
        let err = missing.execute(&cmd("PING")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    });
}

#[test]
fn acl_user_and_password() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let mut raw = server.raw();
        raw.cmd_str(&[
            "ACL",
            "SETUSER",
            "app",
            "on",
            ">app-secret-1",
            "~*",
            "+@all",
        ]);
        let pool = Pool::from_url(&format!(
            "redis://app:app-secret-1@127.0.0.1:{}/0",
            server.port()
        ))
        .unwrap();
        pool.execute(cmd("SET").arg("acl").arg("ok")).unwrap();
        let whoami = pool.execute(cmd("ACL").arg("WHOAMI")).unwrap();
        assert_eq!(whoami, Value::BulkString(b"app".to_vec()));

        let bad = Pool::from_url(&format!(
            "redis://app:nope-nope@127.0.0.1:{}/0",
            server.port()
        ))
        .unwrap();
        let err = bad.execute(&cmd("PING")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert!(err.to_string().contains("app"), "names the user: {err}");
        assert!(!err.to_string().contains("nope-nope"), "{err}");
    });
}

#[test]
fn resp3_hello_carries_the_credentials_and_the_name() {
    with_timeout(LIMIT, || {
        let server = password_server();
        let url = |password: &str| {
            format!(
                "redis://default:{password}@127.0.0.1:{}/2?protocol=3&client_name=hello3",
                server.port()
            )
        };
        let pool = Pool::from_url(&url(PASSWORD)).unwrap();
        let info = match pool.execute(cmd("CLIENT").arg("INFO")).unwrap() {
            Value::VerbatimString { text, .. } => text,
            other => panic!("CLIENT INFO in RESP3 is a verbatim string, got {other:?}"),
        };
        for field in ["resp=3", "name=hello3", "db=2", "user=default"] {
            assert!(info.contains(field), "{field} in {info}");
        }
        // A RESP3 type of its own, where RESP2 would answer an integer.
        let hash = pool.execute(cmd("HSET").arg("h").arg("f").arg("v")).unwrap();
        assert_eq!(hash, Value::Int(1));
        let map = pool.execute(cmd("HGETALL").arg("h")).unwrap();
        assert!(matches!(map, Value::Map(_)), "{map:?}");

        let wrong = Pool::from_url(&url("Wr0ng-Guess-123")).unwrap();
        let err = wrong.execute(&cmd("PING")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
        assert!(!err.to_string().contains("Wr0ng"), "{err}");
    });
}

fn tls_url(server: &RedisServer, query: &str) -> String {
    format!("{}/0?{query}", server.tls_url())
}

#[test]
fn tls_verifies_against_the_given_ca() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start_with(ServerOptions {
            tls: Some(TlsKind::Valid),
            ..Default::default()
        });
        let ca = server.ca_file().display().to_string();
        let pool = Pool::from_url(&tls_url(&server, &format!("tls_ca_file={ca}"))).unwrap();
        pool.execute(cmd("SET").arg("tls").arg("yes")).unwrap();
        assert_eq!(
            pool.execute(cmd("GET").arg("tls")).unwrap(),
            Value::BulkString(b"yes".to_vec())
        );

        // Client certificate (mutual TLS).
        let mtls = Pool::from_url(&tls_url(
            &server,
            &format!(
                "tls_ca_file={ca}&tls_cert_file={}&tls_key_file={}",
                server.client_cert_file().display(),
                server.client_key_file().display()
            ),
        ))
        .unwrap();
        assert!(mtls.execute(&cmd("PING")).is_ok());

        // Without the CA (system store only), the throwaway CA is unknown.
        let untrusted = Pool::from_url(&tls_url(&server, "connect_timeout=2s")).unwrap();
        let err = untrusted.execute(&cmd("PING")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
        assert!(err.to_string().contains("TLS handshake"), "{err}");
        assert!(err.to_string().to_lowercase().contains("issuer"), "{err}");

        // A missing CA file is a configuration error naming the option.
        let err = Pool::from_url(&tls_url(&server, "tls_ca_file=/nonexistent/ca.pem")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().contains("tls_ca_file"), "{err}");
    });
}

#[test]
fn tls_rejects_a_host_name_mismatch_unless_insecure() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start_with(ServerOptions {
            tls: Some(TlsKind::WrongHost),
            ..Default::default()
        });
        let ca = server.ca_file().display().to_string();
        let pool = Pool::from_url(&tls_url(&server, &format!("tls_ca_file={ca}"))).unwrap();
        let err = pool.execute(&cmd("PING")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
        assert!(err.to_string().contains("TLS handshake"), "{err}");
        assert!(
            err.to_string().contains("NotValidForName") || err.to_string().contains("name"),
            "{err}"
        );

        let insecure = Pool::from_url(&tls_url(&server, "tls_insecure=true")).unwrap();
        assert!(insecure.execute(&cmd("PING")).is_ok());
    });
}
