//! `capstan images`: build the built-in images, import tarballs into a node's containerd,
//! list what a node has.

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum ImagesCommand {
    /// Import image tarballs (docker-archive or OCI layout) into the node's containerd; when it
    /// is not running, queue them for the node agent's next start.
    Import {
        #[arg(long, short = 'd')]
        data_dir: Option<PathBuf>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the images the node's containerd has.
    List {
        #[arg(long, short = 'd')]
        data_dir: Option<PathBuf>,
    },
    /// Build the pause and busybox images from this machine's packages into DIR.
    BuildBuiltin {
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cmd: ImagesCommand) -> Result<()> {
    match cmd {
        ImagesCommand::Import { data_dir, files } => {
            let dir = data_dir.unwrap_or_else(crate::server::default_data_dir);
            let socket = capstan_images::containerd_socket(&dir);
            for f in files {
                if socket.exists() {
                    capstan_images::import(&socket, &f)?;
                    println!("imported {}", f.display());
                } else {
                    let pending = capstan_images::pending_dir(&dir);
                    std::fs::create_dir_all(&pending)?;
                    let name = f
                        .file_name()
                        .map(PathBuf::from)
                        .unwrap_or_else(|| PathBuf::from("image.tar"));
                    std::fs::copy(&f, pending.join(&name))?;
                    println!(
                        "queued {} for the node agent's next start ({})",
                        f.display(),
                        pending.display()
                    );
                }
            }
            Ok(())
        }
        ImagesCommand::List { data_dir } => {
            let dir = data_dir.unwrap_or_else(crate::server::default_data_dir);
            let images = capstan_images::list(&capstan_images::containerd_socket(&dir))?;
            println!("{:<50} {:<20} {:<15} SIZE", "REPOSITORY", "TAG", "IMAGE ID");
            for i in images {
                let (repo, tag) = match i.reference.rsplit_once(':') {
                    Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
                    _ => (i.reference.clone(), "<none>".to_string()),
                };
                let id: String = i
                    .digest
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(13)
                    .collect();
                println!("{repo:<50} {tag:<20} {id:<15} {}", i.size);
            }
            Ok(())
        }
        ImagesCommand::BuildBuiltin { out } => {
            capstan_images::builtin::build_builtin(&out)?;
            println!(
                "wrote {} and {}",
                out.join("pause.tar").display(),
                out.join("busybox.tar").display()
            );
            Ok(())
        }
    }
}
