//! TLS client settings for `rediss://`: one rustls [`ClientConfig`] per pool, built once from the
//! pool's [`TlsConfig`] (CA file or system store, optional client certificate, optional insecure
//! opt-out).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::TlsConfig;
use crate::error::{Error, ErrorKind, Result};

/// Builds the rustls client configuration for `tls`. File problems are reported with the path.
pub(crate) fn client_config(tls: &TlsConfig) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(format!("no usable TLS protocol version: {e}")))?;
    let builder = if tls.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        builder.with_root_certificates(root_store(tls.ca_file.as_deref())?)
    };
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let chain = read_certificates("tls_cert_file", cert)?;
            let key = PrivateKeyDer::from_pem_slice(&read_file("tls_key_file", key)?)
                .map_err(|e| invalid_file("tls_key_file", key, &e.to_string()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_error(format!("client certificate rejected: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The server name to verify, from the configured host (a DNS name or an IP address).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_string()).map_err(|_| {
        Error::invalid(
            "host",
            format!("{host:?}"),
            "is not a valid TLS server name",
        )
    })
}

fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    let certificates = match ca_file {
        Some(path) => read_certificates("tls_ca_file", path)?,
        None => rustls_native_certs::load_native_certs().certs,
    };
    for certificate in certificates {
        // A malformed system certificate must not stop the others from working.
        let _ = store.add(certificate);
    }
    if store.is_empty() {
        return Err(tls_error(
            "no trusted CA certificates (set tls_ca_file, or install ca-certificates)".into(),
        ));
    }
    Ok(store)
}

fn read_certificates(field: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read_file(field, path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| invalid_file(field, path, &e.to_string()))?;
    if certificates.is_empty() {
        return Err(invalid_file(field, path, "contains no PEM certificate"));
    }
    Ok(certificates)
}

fn read_file(field: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| invalid_file(field, path, &e.to_string()))
}

fn invalid_file(field: &str, path: &Path, why: &str) -> Error {
    Error::invalid(field, path.display(), &format!("cannot be used: {why}"))
}

fn tls_error(message: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, format!("TLS: {message}"))
}

/// The `tls_insecure` opt-out: accepts any certificate for any name. Signatures are still checked
/// so the handshake itself stays well-formed.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
