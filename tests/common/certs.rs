//! Test certificates (rcgen), as PEM files in a fresh directory, and a rustls client that
//! trusts them. Shared by tests/tls.rs and tests/tls_replication.rs through `#[path]`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls;

/// A CA (`ca.crt`) with, signed by it: `server` (for localhost and 127.0.0.1), `elsewhere`
/// (for `master.example` only: a certificate whose names match no address the tests
/// connect to) and `client`. A second CA, `other-ca.crt`, signs `stranger` (a client
/// certificate no server of the tests trusts).
pub struct Certs {
    pub dir: PathBuf,
}

impl Certs {
    pub fn make(tag: &str) -> Certs {
        let dir = crate::common::fresh_dir(tag);
        let ca = |cn: &str, file: &str| {
            let key = rcgen::KeyPair::generate().expect("CA key");
            let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            p.distinguished_name.push(rcgen::DnType::CommonName, cn);
            let cert = p.self_signed(&key).expect("CA certificate");
            std::fs::write(dir.join(file), cert.pem()).expect("write the CA");
            (cert, key)
        };
        let issue = |names: &[&str],
                     cn: &str,
                     file: &str,
                     (ca, ca_key): &(rcgen::Certificate, rcgen::KeyPair)| {
            let key = rcgen::KeyPair::generate().expect("key");
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let mut p = rcgen::CertificateParams::new(names).expect("params");
            p.distinguished_name.push(rcgen::DnType::CommonName, cn);
            let cert = p.signed_by(&key, ca, ca_key).expect("certificate");
            std::fs::write(dir.join(format!("{file}.crt")), cert.pem()).expect("write");
            std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).expect("write");
        };
        let main = ca("hashd test CA", "ca.crt");
        issue(&["localhost", "127.0.0.1"], "localhost", "server", &main);
        issue(&["master.example"], "master.example", "elsewhere", &main);
        issue(&["client"], "client", "client", &main);
        let other = ca("another CA", "other-ca.crt");
        issue(&["stranger"], "stranger", "stranger", &other);
        Certs { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

pub type TlsClient = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS client trusting the test CA, with the client certificate if `with_cert`.
pub fn connect(certs: &Certs, port: u16, with_cert: bool) -> std::io::Result<TlsClient> {
    use rustls_pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(certs.path("ca.crt")).expect("ca") {
        roots.add(c.expect("ca cert")).expect("add ca");
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = if with_cert {
        let chain: Vec<_> =
            rustls_pki_types::CertificateDer::pem_file_iter(certs.path("client.crt"))
                .expect("client cert")
                .map(|c| c.expect("cert"))
                .collect();
        let key = rustls_pki_types::PrivateKeyDer::from_pem_file(certs.path("client.key"))
            .expect("client key");
        builder
            .with_client_auth_cert(chain, key)
            .expect("client auth")
    } else {
        builder.with_no_client_auth()
    };
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// Sends `request` and reads until a reply line ends (or the connection fails).
pub fn roundtrip(s: &mut TlsClient, request: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(request)?;
    s.flush()?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.ends_with(b"\r\n") {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(out)
}
