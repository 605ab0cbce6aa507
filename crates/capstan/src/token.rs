//! The node join token, in k3s' format: `K10<sha256 of the CA certificate PEM>::server:<secret>`.
//! The hash lets an agent pin the cluster CA on first contact (`GET /cacerts` over unverified
//! TLS, compared with the hash before the secret is sent); the secret authenticates it to the
//! node-credentials endpoint. Pure: parsing, formatting, CA verification.

use sha2::{Digest, Sha256};

/// A parsed join token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The CA hash (lowercase hex), absent in short tokens.
    pub ca_hash: Option<String>,
    pub user: String,
    pub secret: String,
}

const PREFIX: &str = "K10";

/// sha256 of the CA's PEM, lowercase hex.
pub fn ca_hash(ca_pem: &[u8]) -> String {
    Sha256::digest(ca_pem)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The full token for a CA and secret.
pub fn format(ca_pem: &[u8], secret: &str) -> String {
    format!("{PREFIX}{}::server:{secret}", ca_hash(ca_pem))
}

/// Parse a token: `K10<hash>::<user>:<secret>` (full), or a bare secret (short, no CA hash;
/// `K10<secret>` as earlier servers wrote it counts as one).
pub fn parse(s: &str) -> Result<Token, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("the join token is empty".into());
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the join token contains whitespace".into());
    }
    let Some((head, creds)) = s.split_once("::") else {
        return Ok(Token {
            ca_hash: None,
            user: "server".into(),
            secret: s.strip_prefix(PREFIX).unwrap_or(s).to_string(),
        });
    };
    let hash = head
        .strip_prefix(PREFIX)
        .ok_or_else(|| format!("a full join token starts with {PREFIX}"))?;
    if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "the join token's CA hash is not a sha256 in hex ({} characters)",
            hash.len()
        ));
    }
    let (user, secret) = creds
        .split_once(':')
        .ok_or("the join token lacks <user>:<secret> after ::")?;
    if user.is_empty() || secret.is_empty() {
        return Err("the join token's user or secret is empty".into());
    }
    Ok(Token {
        ca_hash: Some(hash.to_ascii_lowercase()),
        user: user.to_string(),
        secret: secret.to_string(),
    })
}

impl Token {
    /// Check the CA a server presented against the token's hash.
    pub fn verify_ca(&self, ca_pem: &[u8]) -> Result<(), String> {
        let Some(want) = &self.ca_hash else {
            return Err(
                "the join token carries no CA hash (K10<sha256>::server:<secret>); use the server's <data-dir>/token"
                    .into(),
            );
        };
        let got = ca_hash(ca_pem);
        if &got != want {
            return Err(format!(
                "the server's CA certificate (sha256 {got}) does not match the join token's CA hash ({want})"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &[u8] = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn parse_table() {
        let h = ca_hash(CA);
        let upper = h.to_ascii_uppercase();
        let full = format(CA, "s3cret");
        let cases: Vec<(String, Result<Token, &str>)> = vec![
            (
                full.clone(),
                Ok(Token {
                    ca_hash: Some(h.clone()),
                    user: "server".into(),
                    secret: "s3cret".into(),
                }),
            ),
            (
                format!("  {full}\n"),
                Ok(Token {
                    ca_hash: Some(h.clone()),
                    user: "server".into(),
                    secret: "s3cret".into(),
                }),
            ),
            (
                format!("K10{upper}::node:pw:with:colons"),
                Ok(Token {
                    ca_hash: Some(h.clone()),
                    user: "node".into(),
                    secret: "pw:with:colons".into(),
                }),
            ),
            (
                "K10legacyRandom".into(),
                Ok(Token {
                    ca_hash: None,
                    user: "server".into(),
                    secret: "legacyRandom".into(),
                }),
            ),
            (
                "justasecret".into(),
                Ok(Token {
                    ca_hash: None,
                    user: "server".into(),
                    secret: "justasecret".into(),
                }),
            ),
            ("".into(), Err("the join token is empty")),
            ("a b".into(), Err("the join token contains whitespace")),
            (
                format!("X10{h}::server:s"),
                Err("a full join token starts with K10"),
            ),
            (
                "K10abc::server:s".into(),
                Err("the join token's CA hash is not a sha256 in hex (3 characters)"),
            ),
            (
                format!("K10{}::server:s", "g".repeat(64)),
                Err("the join token's CA hash is not a sha256 in hex (64 characters)"),
            ),
            (
                format!("K10{h}::nosecret"),
                Err("the join token lacks <user>:<secret> after ::"),
            ),
            (
                format!("K10{h}::server:"),
                Err("the join token's user or secret is empty"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse(&input), want.map_err(String::from), "{input:?}");
        }
    }

    #[test]
    fn ca_verification_table() {
        let other = b"another CA";
        let cases: Vec<(String, &[u8], Result<(), String>)> = vec![
            (format(CA, "s"), CA, Ok(())),
            (
                format(CA, "s"),
                other,
                Err(format!(
                    "the server's CA certificate (sha256 {}) does not match the join token's CA hash ({})",
                    ca_hash(other),
                    ca_hash(CA)
                )),
            ),
            (
                format!("K10{}::server:s", ca_hash(CA).to_ascii_uppercase()),
                CA,
                Ok(()),
            ),
            (
                "short".into(),
                CA,
                Err("the join token carries no CA hash (K10<sha256>::server:<secret>); use the server's <data-dir>/token".into()),
            ),
        ];
        for (token, ca, want) in cases {
            let t = parse(&token).unwrap();
            assert_eq!(t.verify_ca(ca), want, "{token}");
        }
    }

    #[test]
    fn hash_is_sha256_hex() {
        // sha256("") is well known.
        assert_eq!(
            ca_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(format(CA, "x").starts_with("K10") && format(CA, "x").ends_with("::server:x"));
    }
}
