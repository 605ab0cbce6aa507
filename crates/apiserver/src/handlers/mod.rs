//! Resource request handlers: one module per verb family. Each takes the parsed request and
//! answers with a response; errors become `Status` objects.

mod delete;
mod read;
pub(crate) mod streaming;
mod subresources;
mod watch;
mod write;

use crate::auth::User;
use crate::request::{ResourceRequest, Verb};
use crate::respond;
use crate::server::Body;
use crate::status::{ApiError, ApiResult};
use crate::ApiServer;
use bytes::Bytes;
use hyper::Response;
use std::sync::Arc;

/// One resource request with everything the handlers need.
pub struct Req {
    pub method: http::Method,
    pub headers: http::HeaderMap,
    pub query: Vec<(String, String)>,
    pub body: Bytes,
    pub user: User,
    pub rr: ResourceRequest,
    /// Warnings for the client, sent as `Warning: 299 - "..."` headers (e.g. unknown fields
    /// under fieldValidation=Warn).
    pub warnings: std::sync::Mutex<Vec<String>>,
    /// The connection upgrade of an HTTP/1.1 request (exec, attach, portforward take it).
    pub upgrade: std::sync::Mutex<Option<hyper::upgrade::OnUpgrade>>,
}

impl Req {
    pub fn new(
        mut parts: http::request::Parts,
        query: Vec<(String, String)>,
        body: Bytes,
        user: User,
        rr: ResourceRequest,
    ) -> Req {
        Req {
            method: parts.method,
            headers: parts.headers,
            query,
            body,
            user,
            rr,
            warnings: Default::default(),
            upgrade: std::sync::Mutex::new(parts.extensions.remove::<hyper::upgrade::OnUpgrade>()),
        }
    }

    /// The last value of a query parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn flag(&self, key: &str) -> bool {
        self.param(key).is_some_and(crate::request::is_true)
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Content-Type without parameters, lower-cased.
    pub fn content_type(&self) -> String {
        self.header("content-type")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    /// Whether the client asked for a meta.k8s.io Table (server-side printing).
    pub fn wants_table(&self) -> bool {
        self.header("accept")
            .split(',')
            .any(|a| a.contains("as=Table"))
    }

    /// Whether the client asked for PartialObjectMetadata(List) instead of full objects.
    pub fn wants_metadata_only(&self) -> bool {
        let accept = self.header("accept");
        accept
            .split(',')
            .next()
            .is_some_and(|first| first.contains("as=PartialObjectMetadata"))
    }

    pub fn namespace(&self) -> Option<&str> {
        self.rr.namespace.as_deref()
    }

    pub fn name(&self) -> &str {
        self.rr.name.as_deref().unwrap_or("")
    }

    pub fn dry_run(&self) -> bool {
        self.param("dryRun").is_some_and(|v| v == "All")
    }

    /// Queue a warning for the response.
    pub fn warn(&self, text: String) {
        if let Ok(mut w) = self.warnings.lock() {
            w.push(text);
        }
    }
}

pub async fn handle(api: Arc<ApiServer>, req: Req) -> Response<Body> {
    let resp = handle_inner(&api, &req).await;
    add_warnings(resp, &req)
}

fn add_warnings(mut resp: Response<Body>, req: &Req) -> Response<Body> {
    let warnings = req.warnings.lock().map(|w| w.clone()).unwrap_or_default();
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = http::HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append("warning", v);
        }
    }
    resp
}

async fn handle_inner(api: &Arc<ApiServer>, req: &Req) -> Response<Body> {
    match dispatch(api, req).await {
        Ok(resp) => resp,
        Err(e) => {
            if e.code >= 500 {
                tracing::warn!(method = %req.method, resource = req.rr.resource.plural, error = %e, "request failed");
            }
            respond::error(&e)
        }
    }
}

async fn dispatch(api: &Arc<ApiServer>, req: &Req) -> ApiResult<Response<Body>> {
    let r = req.rr.resource;
    let verb_name = match req.rr.verb {
        Verb::Get => "get",
        Verb::List => "list",
        Verb::Watch => "watch",
        Verb::Create => "create",
        Verb::Update => "update",
        Verb::Patch => "patch",
        Verb::Delete => "delete",
        Verb::DeleteCollection => "deletecollection",
    };
    if req.rr.subresource.is_none() && !r.verbs.contains(&verb_name) {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({verb_name} {})",
            r.plural
        )));
    }
    if !r.is_stored() {
        return subresources::review(api, req).await;
    }
    if r.namespaced
        && req.rr.namespace.is_none()
        && !matches!(req.rr.verb, Verb::List | Verb::Watch)
    {
        return Err(ApiError::no_route());
    }
    if let Some(sub) = req.rr.subresource.as_deref() {
        match sub {
            "status" | "finalize" => {}
            "scale" => return subresources::scale(api, req).await,
            "binding" => return subresources::binding(api, req).await,
            "eviction" => return subresources::eviction(api, req).await,
            s if r.plural == "pods" && streaming::SUBRESOURCES.contains(&s) => {
                return streaming::handle(api, req, s).await
            }
            _ => {
                return Err(ApiError::new(
                    404,
                    "NotFound",
                    format!(
                        "the server could not find the requested resource ({} {})",
                        r.plural, sub
                    ),
                ))
            }
        }
    }
    match req.rr.verb {
        Verb::Get => read::get(api, req).await,
        Verb::List => read::list(api, req).await,
        Verb::Watch => watch::watch(api, req).await,
        Verb::Create => write::create(api, req).await,
        Verb::Update => write::update(api, req).await,
        Verb::Patch => write::patch(api, req).await,
        Verb::Delete => delete::delete(api, req).await,
        Verb::DeleteCollection => delete::delete_collection(api, req).await,
    }
}
