//! TLS for clients (`tls-port`), with rustls: Redis's `tls-*` directives mapped onto a
//! rustls server configuration.
//!
//! * `tls-cert-file` / `tls-key-file`: the server's chain and key (PEM; an encrypted key,
//!   `tls-key-file-pass`, is refused: rustls reads only plain keys).
//! * `tls-ca-cert-file` / `tls-ca-cert-dir`: the roots client certificates must chain to.
//! * `tls-auth-clients`: `yes` (Redis's default) requires a client certificate, `optional`
//!   checks one if sent, `no` asks for none.
//! * `tls-protocols`: `TLSv1.2` and/or `TLSv1.3` (rustls has no older versions: asking
//!   for them alone is refused).
//! * `tls-ciphersuites` (TLS 1.3, `TLS_AES_256_GCM_SHA384:…`) and `tls-ciphers` (TLS 1.2,
//!   OpenSSL names such as `ECDHE-RSA-AES256-GCM-SHA384`): the suites rustls has; a list
//!   naming none of them is refused.
//! * `tls-prefer-server-ciphers`: the server's order wins; `tls-session-caching no`: no
//!   session resumption.
//!
//! CONFIG SET of any of these builds a new configuration and, if it is valid, serves new
//! connections with it (open ones keep theirs), as Redis reloads its TLS context.
//!
//! Replication over TLS (`tls-replication yes`): a replica connects to its master with a
//! rustls client configuration made from the same settings, as Redis's client context:
//!
//! * the master's certificate must chain to `tls-ca-cert-file` / `tls-ca-cert-dir` (a CA
//!   is required, as in Redis). Like Redis (OpenSSL with `SSL_VERIFY_PEER` and no host
//!   check), **the master's name is not checked**: a replica pointed at `10.0.0.5` accepts
//!   any certificate the CA signed, whatever names it holds. rustls always checks names,
//!   so [`ChainOnly`] verifies the chain (validity dates, key usage for a server) and
//!   skips that one step. As Redis, the name is sent as SNI when `replicaof` names a host
//!   rather than an IP address;
//! * the replica presents `tls-client-cert-file` / `tls-client-key-file` if both are set,
//!   otherwise `tls-cert-file` / `tls-key-file` (which Redis requires in any case);
//! * `tls-protocols`, `tls-ciphersuites` and `tls-ciphers` apply to it too; sessions are
//!   not resumed (a full handshake per connection, as Redis's replica).
//!
//! A master serves replicas on whichever port they connect to: `tls-replication` only
//! decides how a replica connects.

use std::sync::Arc;

use parking_lot::RwLock;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The `tls-*` settings that make the server configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: String,
    pub key_file: String,
    pub key_file_pass: String,
    pub ca_cert_file: String,
    pub ca_cert_dir: String,
    /// `yes`, `no` or `optional`.
    pub auth_clients: String,
    pub protocols: String,
    pub ciphersuites: String,
    pub ciphers: String,
    pub prefer_server_ciphers: bool,
    pub session_caching: bool,
    /// `tls-replication`: a replica connects to its master over TLS.
    pub replication: bool,
    pub client_cert_file: String,
    pub client_key_file: String,
    pub client_key_file_pass: String,
}

impl TlsSettings {
    pub fn from_config(c: &crate::config::Config) -> Self {
        TlsSettings {
            cert_file: c.tls_cert_file.clone(),
            key_file: c.tls_key_file.clone(),
            key_file_pass: c.tls_key_file_pass.clone(),
            ca_cert_file: c.tls_ca_cert_file.clone(),
            ca_cert_dir: c.tls_ca_cert_dir.clone(),
            auth_clients: c.tls_auth_clients.clone(),
            protocols: c.tls_protocols.clone(),
            ciphersuites: c.tls_ciphersuites.clone(),
            ciphers: c.tls_ciphers.clone(),
            prefer_server_ciphers: c.tls_prefer_server_ciphers,
            session_caching: c.tls_session_caching,
            replication: c.tls_replication,
            client_cert_file: c.tls_client_cert_file.clone(),
            client_key_file: c.tls_client_key_file.clone(),
            client_key_file_pass: c.tls_client_key_file_pass.clone(),
        }
    }
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn read_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read certificates from '{path}': {e}"))?
        .collect();
    let certs = certs.map_err(|e| format!("bad certificate in '{path}': {e}"))?;
    if certs.is_empty() {
        return Err(format!("no certificate in '{path}'"));
    }
    Ok(certs)
}

/// The roots client certificates are checked against.
fn roots(s: &TlsSettings) -> Result<rustls::RootCertStore, String> {
    let mut store = rustls::RootCertStore::empty();
    let mut add = |path: &str| -> Result<(), String> {
        for cert in read_certs(path)? {
            store
                .add(cert)
                .map_err(|e| format!("bad CA certificate in '{path}': {e}"))?;
        }
        Ok(())
    };
    if !s.ca_cert_file.is_empty() {
        add(&s.ca_cert_file)?;
    }
    if !s.ca_cert_dir.is_empty() {
        let dir = std::fs::read_dir(&s.ca_cert_dir)
            .map_err(|e| format!("cannot read tls-ca-cert-dir '{}': {e}", s.ca_cert_dir))?;
        for entry in dir.flatten() {
            let p = entry.path();
            if p.is_file() {
                // Hash links and other files that are not certificates are skipped.
                let _ = add(&p.to_string_lossy());
            }
        }
    }
    Ok(store)
}

fn versions(text: &str) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    if text.trim().is_empty() {
        return Ok(vec![&rustls::version::TLS12, &rustls::version::TLS13]);
    }
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        match word.to_ascii_lowercase().as_str() {
            "tlsv1.2" => out.push(&rustls::version::TLS12),
            "tlsv1.3" => out.push(&rustls::version::TLS13),
            // Redis accepts these; rustls has no such versions.
            "tlsv1" | "tlsv1.1" => {}
            _ => return Err(format!("invalid tls-protocols value '{word}'")),
        }
    }
    if out.is_empty() {
        return Err("tls-protocols names no version hashd supports (TLSv1.2, TLSv1.3)".into());
    }
    Ok(out)
}

/// rustls's name for an OpenSSL TLS 1.2 cipher name (the suites rustls has).
fn tls12_name(openssl: &str) -> Option<&'static str> {
    Some(match openssl {
        "ECDHE-ECDSA-AES256-GCM-SHA384" => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256" => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305" => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384" => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256" => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305" => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        _ => return None,
    })
}

/// The cipher suites `tls-ciphersuites` (TLS 1.3) and `tls-ciphers` (TLS 1.2) allow; an
/// empty setting keeps rustls's suites of that version.
fn suites(s: &TlsSettings) -> Result<Vec<rustls::SupportedCipherSuite>, String> {
    let all = provider().cipher_suites;
    let is13 = |c: &rustls::SupportedCipherSuite| c.version() == &rustls::version::TLS13;
    let mut out: Vec<rustls::SupportedCipherSuite> = Vec::new();
    if s.ciphersuites.trim().is_empty() {
        out.extend(all.iter().filter(|c| is13(c)).copied());
    } else {
        for name in s.ciphersuites.split(':').filter(|n| !n.is_empty()) {
            // OpenSSL's `TLS_AES_256_GCM_SHA384` is rustls's `TLS13_AES_256_GCM_SHA384`.
            let wanted = name.replacen("TLS_", "TLS13_", 1);
            out.extend(
                all.iter()
                    .filter(|c| is13(c) && c.suite().as_str() == Some(wanted.as_str()))
                    .copied(),
            );
        }
    }
    if s.ciphers.trim().is_empty() || s.ciphers.trim().eq_ignore_ascii_case("DEFAULT") {
        out.extend(all.iter().filter(|c| !is13(c)).copied());
    } else {
        for name in s.ciphers.split(':').filter(|n| !n.is_empty()) {
            if let Some(wanted) = tls12_name(name) {
                out.extend(
                    all.iter()
                        .filter(|c| !is13(c) && c.suite().as_str() == Some(wanted))
                        .copied(),
                );
            }
        }
    }
    if out.is_empty() {
        return Err("tls-ciphersuites and tls-ciphers name no cipher suite hashd has".into());
    }
    Ok(out)
}

/// A rustls server configuration from the settings, or why it cannot be made.
pub fn server_config(s: &TlsSettings) -> Result<rustls::ServerConfig, String> {
    if !s.key_file_pass.is_empty() {
        return Err(
            "tls-key-file-pass: encrypted private keys are not supported; decrypt \
                    the key file (openssl pkey -in key.pem -out plain.pem)"
                .into(),
        );
    }
    if s.cert_file.is_empty() || s.key_file.is_empty() {
        return Err("tls-port needs tls-cert-file and tls-key-file".into());
    }
    let certs = read_certs(&s.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&s.key_file)
        .map_err(|e| format!("cannot read a private key from '{}': {e}", s.key_file))?;
    let mut provider = provider();
    provider.cipher_suites = suites(s)?;
    let versions = versions(&s.protocols)?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls-protocols / tls-ciphers: {e}"))?;
    let builder = match s.auth_clients.to_ascii_lowercase().as_str() {
        "no" => builder.with_no_client_auth(),
        mode @ ("yes" | "optional") => {
            if s.ca_cert_file.is_empty() && s.ca_cert_dir.is_empty() {
                return Err(
                    "tls-auth-clients yes/optional needs tls-ca-cert-file or tls-ca-cert-dir"
                        .into(),
                );
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots(s)?));
            let verifier = if mode == "optional" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| format!("client certificate roots: {e}"))?,
            )
        }
        other => return Err(format!("invalid tls-auth-clients value '{other}'")),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls-cert-file / tls-key-file: {e}"))?;
    config.ignore_client_order = s.prefer_server_ciphers;
    if !s.session_caching {
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    }
    Ok(config)
}

/// Redis's error when TLS must verify peers and has no CA to verify them with.
const NO_CA: &str = "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when \
                     tls-cluster, tls-replication or tls-auth-clients are enabled!";

/// Verifies a master's certificate the way Redis's OpenSSL client context does: the chain
/// up to one of the roots, for a TLS server, at the current time, and nothing about the
/// names it is valid for (see the module's documentation).
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<rustls::RootCertStore>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The rustls client configuration a replica connects to its master with
/// (`tls-replication yes`), or why it cannot be made.
pub fn client_config(s: &TlsSettings) -> Result<rustls::ClientConfig, String> {
    if !s.key_file_pass.is_empty() || !s.client_key_file_pass.is_empty() {
        return Err(
            "tls-key-file-pass / tls-client-key-file-pass: encrypted private keys are not \
             supported; decrypt the key file (openssl pkey -in key.pem -out plain.pem)"
                .into(),
        );
    }
    // Redis needs tls-cert-file / tls-key-file for any TLS, client certificates or not.
    if s.cert_file.is_empty() {
        return Err("No tls-cert-file configured!".into());
    }
    if s.key_file.is_empty() {
        return Err("No tls-key-file configured!".into());
    }
    if s.ca_cert_file.is_empty() && s.ca_cert_dir.is_empty() {
        return Err(NO_CA.into());
    }
    let (cert_file, key_file) = if !s.client_cert_file.is_empty() && !s.client_key_file.is_empty() {
        (&s.client_cert_file, &s.client_key_file)
    } else {
        (&s.cert_file, &s.key_file)
    };
    let certs = read_certs(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("cannot read a private key from '{key_file}': {e}"))?;
    let mut provider = provider();
    provider.cipher_suites = suites(s)?;
    let verifier = ChainOnly {
        roots: Arc::new(roots(s)?),
        algorithms: provider.signature_verification_algorithms,
    };
    let versions = versions(&s.protocols)?;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls-protocols / tls-ciphers: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("{cert_file} / {key_file}: {e}"))?;
    // Redis's replica starts every connection with a full handshake (its OpenSSL context
    // caches sessions for the server side only).
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// The name a replica gives its master's TLS handshake: an IP address as is (no SNI is
/// sent for it, as in Redis), a host name as SNI. A host name rustls cannot carry (not a
/// valid DNS name) falls back to the address connected to, without SNI.
pub fn master_name(
    host: &str,
    peer: Option<std::net::SocketAddr>,
) -> Option<rustls_pki_types::ServerName<'static>> {
    match rustls_pki_types::ServerName::try_from(host.to_string()) {
        Ok(name) => Some(name),
        Err(_) => peer.map(|a| rustls_pki_types::ServerName::IpAddress(a.ip().into())),
    }
}

/// What a CONFIG SET of `tls-*` settings (or `tls-port`) will put in force, built and
/// checked before anything changes.
pub struct Prepared {
    settings: TlsSettings,
    acceptor: Option<TlsAcceptor>,
    connector: Option<TlsConnector>,
}

/// The acceptor new TLS connections use, replaced by CONFIG SET.
pub struct Tls {
    settings: RwLock<TlsSettings>,
    acceptor: RwLock<Option<TlsAcceptor>>,
    /// With `tls-replication yes`: how the replica connects to its master.
    connector: RwLock<Option<TlsConnector>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("settings", &*self.settings.read())
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// With `tls-port` set the settings must make a server configuration, and with
    /// `tls-replication yes` a client one (start-up fails otherwise); without either,
    /// nothing is built.
    pub fn new(settings: TlsSettings, serving: bool) -> Result<Tls, String> {
        let acceptor = if serving {
            Some(TlsAcceptor::from(Arc::new(server_config(&settings)?)))
        } else {
            None
        };
        let connector = if settings.replication {
            Some(TlsConnector::from(Arc::new(client_config(&settings)?)))
        } else {
            None
        };
        Ok(Tls {
            settings: RwLock::new(settings),
            acceptor: RwLock::new(acceptor),
            connector: RwLock::new(connector),
        })
    }

    /// Settings kept for CONFIG GET, no TLS served.
    pub fn disabled(settings: TlsSettings) -> Tls {
        Tls {
            settings: RwLock::new(settings),
            acceptor: RwLock::new(None),
            connector: RwLock::new(None),
        }
    }

    pub fn settings(&self) -> TlsSettings {
        self.settings.read().clone()
    }

    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        self.acceptor.read().clone()
    }

    /// How a replica connects to its master: Some with `tls-replication yes`.
    pub fn connector(&self) -> Option<TlsConnector> {
        self.connector.read().clone()
    }

    /// Whether `tls-port` connections are served.
    pub fn serving(&self) -> bool {
        self.acceptor.read().is_some()
    }

    /// CONFIG SET: the settings with `change` applied, and the configurations they make —
    /// a server one if TLS is to be served (`serve`: Some(on) when `tls-port` changes,
    /// None to keep serving as now), a client one with `tls-replication yes`. Nothing
    /// changes until [`Tls::commit`].
    pub fn prepare(
        &self,
        change: impl FnOnce(&mut TlsSettings),
        serve: Option<bool>,
    ) -> Result<Prepared, String> {
        let mut settings = self.settings();
        change(&mut settings);
        let acceptor = if serve.unwrap_or_else(|| self.serving()) {
            Some(TlsAcceptor::from(Arc::new(server_config(&settings)?)))
        } else {
            None
        };
        let connector = if settings.replication {
            Some(TlsConnector::from(Arc::new(client_config(&settings)?)))
        } else {
            None
        };
        Ok(Prepared {
            settings,
            acceptor,
            connector,
        })
    }

    /// Puts what [`Tls::prepare`] built in force, for new connections (open ones keep
    /// theirs).
    pub fn commit(&self, p: Prepared) {
        *self.acceptor.write() = p.acceptor;
        *self.connector.write() = p.connector;
        *self.settings.write() = p.settings;
    }
}
