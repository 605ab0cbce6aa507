//! The CRI v1 client (k8s-cri's tonic stubs) over containerd's unix socket.

use anyhow::{Context, Result};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use std::path::{Path, PathBuf};
use tonic::transport::{Channel, Endpoint};

pub type Runtime = RuntimeServiceClient<Channel>;
pub type Images = k8s_cri::v1::image_service_client::ImageServiceClient<Channel>;

/// Connect to a CRI endpoint at a unix socket path.
pub async fn connect(socket: &Path) -> Result<Runtime> {
    Ok(RuntimeServiceClient::new(channel(socket).await?))
}

/// The runtime and image services over one connection.
pub async fn connect_both(socket: &Path) -> Result<(Runtime, Images)> {
    let ch = channel(socket).await?;
    Ok((RuntimeServiceClient::new(ch.clone()), Images::new(ch)))
}

async fn channel(socket: &Path) -> Result<Channel> {
    let path: PathBuf = socket.to_path_buf();
    let channel = Endpoint::try_from("http://[::1]:50051")?
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .with_context(|| format!("connecting to CRI at {}", socket.display()))?;
    Ok(channel)
}

/// "containerd://1.6.20" from CRI Version.
pub async fn runtime_version(rt: &mut Runtime) -> Result<String> {
    let v = rt
        .version(k8s_cri::v1::VersionRequest {
            version: "v1".into(),
        })
        .await?
        .into_inner();
    Ok(format!("{}://{}", v.runtime_name, v.runtime_version))
}

/// Whether the runtime reports RuntimeReady (and, separately, NetworkReady).
pub async fn runtime_ready(rt: &mut Runtime) -> Result<(bool, bool, String)> {
    let s = rt
        .status(k8s_cri::v1::StatusRequest { verbose: false })
        .await?
        .into_inner();
    let conds = s.status.map(|s| s.conditions).unwrap_or_default();
    let get = |t: &str| conds.iter().find(|c| c.r#type == t);
    let runtime = get("RuntimeReady").map(|c| c.status).unwrap_or(false);
    let network = get("NetworkReady").map(|c| c.status).unwrap_or(false);
    let msg = conds
        .iter()
        .filter(|c| !c.status)
        .map(|c| format!("{}: {}", c.r#type, c.message))
        .collect::<Vec<_>>()
        .join("; ");
    Ok((runtime, network, msg))
}
