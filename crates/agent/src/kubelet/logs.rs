//! `GET /containerLogs/{ns}/{pod}/{container}`: the container's CRI log file rendered as
//! `kubectl logs` shows it; with `follow` the file is tailed until the container has exited and
//! its file stopped growing, or the client went away.

use super::find::{self, Candidate};
use super::paths::{LogOpts, Target};
use super::{text, Body};
use crate::cri::Runtime;
use crate::podstatus::{cri_log_line, render_cri_log};
use bytes::Bytes;
use http::{Response, StatusCode};
use hyper::body::Frame;
use std::convert::Infallible;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// How often a followed log file is polled for growth.
const POLL: Duration = Duration::from_millis(200);

/// Turns bytes appended to a CRI log file into `kubectl logs` lines (each ending in `\n`),
/// joining partial (`P`) lines and dropping lines before `since`, as `render_cri_log` does for
/// a whole file.
pub struct Follower {
    raw: Vec<u8>,
    pending: String,
    timestamps: bool,
    since: Option<String>,
}

impl Follower {
    pub fn new(timestamps: bool, since: Option<String>) -> Follower {
        Follower {
            raw: Vec::new(),
            pending: String::new(),
            timestamps,
            since,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.raw.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(pos) = self.raw.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.raw.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line[..pos]).into_owned();
            if let Some(since) = &self.since {
                let ts = line.split(' ').next().unwrap_or("");
                if ts.get(..19).unwrap_or(ts) < since.get(..19).unwrap_or(since) {
                    continue;
                }
            }
            let (text, complete) = cri_log_line(&line, self.timestamps && self.pending.is_empty());
            self.pending.push_str(&text);
            if complete {
                out.push(format!("{}\n", std::mem::take(&mut self.pending)));
            }
        }
        out
    }

    /// What is left when the file ends (a partial line).
    pub fn finish(&mut self) -> Option<String> {
        if !self.raw.is_empty() {
            self.raw.push(b'\n');
            let mut lines = self.feed(&[]);
            if let Some(l) = lines.pop() {
                return Some(l);
            }
        }
        (!self.pending.is_empty()).then(|| format!("{}\n", std::mem::take(&mut self.pending)))
    }
}

/// Cut `s` to the bytes `left` allows (on a char boundary); false once the limit is reached.
pub fn limit(s: &mut String, left: &mut Option<usize>) -> bool {
    let Some(n) = left else { return true };
    if s.len() >= *n {
        let mut cut = *n;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        *n = 0;
        return false;
    }
    *n -= s.len();
    true
}

fn bad(msg: String) -> Response<Body> {
    text(StatusCode::BAD_REQUEST, &msg)
}

pub async fn serve(mut rt: Runtime, t: Target, opts: LogOpts) -> Response<Body> {
    let all = match find::containers(&mut rt, &t).await {
        Ok(a) => a,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.message()),
    };
    let names: Vec<String> = all.iter().map(|c| c.name.clone()).collect();
    let name = match find::pick_name(&t.pod, &t.container, &names) {
        Ok(n) => n,
        Err(e) => return bad(e),
    };
    let chosen: Option<&Candidate> = if opts.previous {
        find::previous(&all, &name)
    } else {
        find::current(&all, &name)
    };
    let Some(c) = chosen else {
        return bad(if opts.previous {
            format!(
                "previous terminated container {name:?} in pod {:?} not found",
                t.pod
            )
        } else {
            format!(
                "container {name:?} in pod {:?} is waiting to start: ContainerCreating",
                t.pod
            )
        });
    };
    let status = match container_status(&mut rt, &c.id).await {
        Ok(s) => s,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    if status.log_path.is_empty() {
        return bad(format!(
            "container {name:?} in pod {:?} has no log file",
            t.pod
        ));
    }
    let path = std::path::PathBuf::from(&status.log_path);
    if !opts.follow {
        let content = tokio::fs::read(&path).await.unwrap_or_default();
        let mut out = render_cri_log(
            &String::from_utf8_lossy(&content),
            opts.timestamps,
            opts.since.as_deref(),
            opts.tail,
        );
        limit(&mut out, &mut opts.limit_bytes.clone());
        return plain(super::full(out));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(64);
    let id = c.id.clone();
    tokio::spawn(follow(rt, id, path, opts, tx));
    plain(super::channel_body(rx))
}

fn plain(body: Body) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(body)
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}

async fn container_status(
    rt: &mut Runtime,
    id: &str,
) -> Result<k8s_cri::v1::ContainerStatus, String> {
    rt.container_status(k8s_cri::v1::ContainerStatusRequest {
        container_id: id.to_string(),
        verbose: false,
    })
    .await
    .map_err(|e| e.message().to_string())?
    .into_inner()
    .status
    .ok_or_else(|| format!("container {id} has no status"))
}

async fn running(rt: &mut Runtime, id: &str) -> bool {
    container_status(rt, id).await.is_ok_and(|s| {
        s.state == k8s_cri::v1::ContainerState::ContainerRunning as i32
            || s.state == k8s_cri::v1::ContainerState::ContainerCreated as i32
    })
}

/// Tail the file into `tx` until the container has exited and the file is read to its end.
async fn follow(
    mut rt: Runtime,
    id: String,
    path: std::path::PathBuf,
    opts: LogOpts,
    tx: tokio::sync::mpsc::Sender<Result<Frame<Bytes>, Infallible>>,
) {
    let mut left = opts.limit_bytes;
    let mut f = Follower::new(opts.timestamps, opts.since.clone());
    let mut offset = 0u64;
    let mut first = true;
    let mut exited = false;
    loop {
        let chunk = read_from(&path, &mut offset).await;
        let mut lines = f.feed(&chunk);
        if first {
            first = false;
            if let Some(n) = opts.tail {
                lines.drain(..lines.len().saturating_sub(n));
            }
        }
        if chunk.is_empty() && exited {
            lines.extend(f.finish());
        }
        for mut l in lines {
            let more = limit(&mut l, &mut left);
            if tx.send(Ok(Frame::data(Bytes::from(l)))).await.is_err() || !more {
                return;
            }
        }
        if chunk.is_empty() {
            if exited {
                return;
            }
            // No growth: has the container stopped? Then one more read drains what it wrote last.
            exited = !running(&mut rt, &id).await;
            let wait = if exited { POLL / 2 } else { POLL };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = tx.closed() => return,
            }
        }
    }
}

async fn read_from(path: &std::path::Path, offset: &mut u64) -> Vec<u8> {
    let Ok(mut file) = tokio::fs::File::open(path).await else {
        return Vec::new();
    };
    if file.seek(std::io::SeekFrom::Start(*offset)).await.is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    if file.read_to_end(&mut buf).await.is_ok() {
        *offset += buf.len() as u64;
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2026-01-01T00:00:01.5Z stdout F one\n\
2026-01-01T00:00:02Z stderr P tw\n\
2026-01-01T00:00:02.1Z stderr F o\n\
2026-01-01T00:00:03Z stdout F three\n";

    #[test]
    fn follower_matches_whole_file_rendering_in_any_chunking() {
        // timestamps, since
        let cases: &[(bool, Option<&str>)] = &[
            (false, None),
            (true, None),
            (false, Some("2026-01-01T00:00:02Z")),
            (true, Some("2026-01-01T00:00:03.9Z")),
        ];
        for (ts, since) in cases {
            let want = render_cri_log(LOG, *ts, *since, None);
            for chunk in [1, 3, 7, 1000] {
                let mut f = Follower::new(*ts, since.map(str::to_string));
                let mut got = String::new();
                for part in LOG.as_bytes().chunks(chunk) {
                    got.extend(f.feed(part));
                }
                got.extend(f.finish());
                assert_eq!(got, want, "ts={ts} since={since:?} chunk={chunk}");
            }
        }
    }

    #[test]
    fn follower_flushes_a_partial_tail() {
        let mut f = Follower::new(false, None);
        assert!(f.feed(b"2026-01-01T00:00:01Z stdout P half").is_empty());
        assert_eq!(f.finish().as_deref(), Some("half\n"));
        assert_eq!(f.finish(), None);
    }

    #[test]
    fn limits_bytes() {
        /// input, limit, output, continue, limit left
        type Case = (
            &'static str,
            Option<usize>,
            &'static str,
            bool,
            Option<usize>,
        );
        let cases: &[Case] = &[
            ("hello\n", None, "hello\n", true, None),
            ("hello\n", Some(10), "hello\n", true, Some(4)),
            ("hello\n", Some(3), "hel", false, Some(0)),
            ("héllo\n", Some(2), "h", false, Some(0)),
        ];
        for (input, lim, out, more, after) in cases {
            let mut s = input.to_string();
            let mut left = *lim;
            assert_eq!(limit(&mut s, &mut left), *more, "{input}");
            assert_eq!((s.as_str(), left), (*out, *after), "{input}");
        }
    }
}
