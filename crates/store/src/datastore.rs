//! Choosing a backend: [`Datastore::parse`] reads the `--datastore-endpoint`-style setting
//! and [`open`] is the one place a backend is constructed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{Error, Result, Store};

/// Which backend to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Datastore {
    /// The embedded log-structured store in `dir`.
    Embedded {
        /// Directory holding the log (created if missing).
        dir: PathBuf,
    },
    /// An external etcd v3 cluster.
    Etcd {
        /// `http://host:port` URLs.
        endpoints: Vec<String>,
    },
}

impl Datastore {
    /// `None` → embedded store in `data_dir/db`; `etcd://h:p,h2:p2` or `http://h:p,h2:p2` →
    /// etcd; anything else is an error naming the accepted forms.
    pub fn parse(endpoint: Option<&str>, data_dir: &Path) -> Result<Datastore> {
        let Some(endpoint) = endpoint.map(str::trim) else {
            return Ok(Datastore::Embedded {
                dir: data_dir.join("db"),
            });
        };
        let rest = endpoint
            .strip_prefix("etcd://")
            .or_else(|| endpoint.strip_prefix("http://"))
            .ok_or_else(|| {
                Error::Other(format!(
                    "unsupported datastore endpoint {endpoint:?}: expected \
                     etcd://host:port[,host:port...] or http://host:port[,...] \
                     (omit it to use the embedded store)"
                ))
            })?;
        let mut endpoints = Vec::new();
        for part in rest.split(',').map(str::trim) {
            let hostport = part
                .strip_prefix("etcd://")
                .or_else(|| part.strip_prefix("http://"))
                .unwrap_or(part)
                .trim_end_matches('/');
            let valid = match hostport.rsplit_once(':') {
                Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok(),
                None => false,
            };
            if !valid || hostport.contains('/') {
                return Err(Error::Other(format!(
                    "invalid etcd endpoint {part:?} in {endpoint:?}: expected host:port"
                )));
            }
            endpoints.push(format!("http://{hostport}"));
        }
        Ok(Datastore::Etcd { endpoints })
    }
}

/// Opens the chosen backend.
pub async fn open(ds: &Datastore) -> Result<Arc<dyn Store>> {
    match ds {
        Datastore::Embedded { dir } => {
            let store = crate::embedded::EmbeddedStore::open(dir, Default::default()).await?;
            Ok(Arc::new(store))
        }
        Datastore::Etcd { endpoints } => {
            let store = crate::etcd::EtcdStore::connect(endpoints).await?;
            Ok(Arc::new(store))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let dd = Path::new("/var/lib/capstan");
        let etcd = |eps: &[&str]| {
            Some(Datastore::Etcd {
                endpoints: eps.iter().map(|s| s.to_string()).collect(),
            })
        };
        let cases: Vec<(Option<&str>, Option<Datastore>)> = vec![
            (None, Some(Datastore::Embedded { dir: dd.join("db") })),
            (
                Some("etcd://127.0.0.1:2379"),
                etcd(&["http://127.0.0.1:2379"]),
            ),
            (Some("etcd://a:1,b:2"), etcd(&["http://a:1", "http://b:2"])),
            (
                Some("http://a:1,http://b:2/"),
                etcd(&["http://a:1", "http://b:2"]),
            ),
            (Some("https://a:1"), None),
            (Some("mysql://x"), None),
            (Some("etcd://"), None),
            (Some("etcd://a"), None),
            (Some("etcd://a:notaport"), None),
            (Some("etcd://a:1,"), None),
            (Some(""), None),
        ];
        for (input, want) in cases {
            let got = Datastore::parse(input, dd).ok();
            assert_eq!(got, want, "input {input:?}");
        }
    }
}
